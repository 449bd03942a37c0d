"""Organisations' legal and business names and their Microsoft tenant's domains become encrypted.

Names under the organisation's own key; the primary domain gets a blind index for lookups by
domain. The plaintext stays in the columns until the next migration encrypts it (Postgres will
not build the new index in the same transaction as the row updates).
"""

from django.db import migrations

import core.fields


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0008_encrypt_sign_in_and_session_addresses_data'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='organization',
            options={'ordering': ['slug']},
        ),
        migrations.AddField(
            model_name='microsofttenant',
            name='primary_domain_index',
            field=core.fields.BlindIndexField(purpose='tenant-domain', source='primary_domain'),
        ),
        migrations.AlterField(
            model_name='microsofttenant',
            name='primary_domain',
            field=core.fields.EncryptedCharField(blank=True, max_length=253),
        ),
        migrations.AlterField(
            model_name='microsofttenant',
            name='verified_domains',
            field=core.fields.EncryptedJSONField(blank=True, default=list),
        ),
        migrations.AlterField(
            model_name='organization',
            name='business_name',
            field=core.fields.EncryptedCharField(blank=True, key_scope='self_org', max_length=200),
        ),
        migrations.AlterField(
            model_name='organization',
            name='legal_name',
            field=core.fields.EncryptedCharField(key_scope='self_org', max_length=200),
        ),
    ]
