"""A legal hold's reason and an anonymous browser's opt-out id become encrypted.

The opt-out id gets a unique blind index in place of its unique column. The plaintext stays in
the columns until the next migration encrypts it (Postgres will not build the new index in the
same transaction as the row updates).
"""

from django.db import migrations

import core.fields


class Migration(migrations.Migration):

    dependencies = [
        ('privacy', '0010_legal_holds_and_retention_runs'),
    ]

    operations = [
        migrations.AddField(
            model_name='browseroptout',
            name='browser_index',
            field=core.fields.BlindIndexField(purpose='browser-opt-out', source='browser_id', unique=True),
        ),
        migrations.AlterField(
            model_name='browseroptout',
            name='browser_id',
            field=core.fields.EncryptedCharField(key_scope='system:browser-opt-out', max_length=32),
        ),
        migrations.AlterField(
            model_name='legalhold',
            name='reason',
            field=core.fields.EncryptedCharField(key_scope='self', max_length=300),
        ),
    ]
