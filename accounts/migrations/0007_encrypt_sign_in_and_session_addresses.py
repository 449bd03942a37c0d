"""Sign-in events and sessions: address, browser and device id become encrypted, with keyed indexes.

The AlterFields leave the plaintext in the columns (Postgres' inet is cast to text); the next
migration encrypts it in place. Two migrations, because Postgres will not build the new indexes
in the same transaction as the row updates.
"""

from django.db import migrations

import core.fields


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_user_privacy_notice_version'),
        ('core', '0001_initial'),  # data keys
    ]

    operations = [
        migrations.AddField(
            model_name='signinevent',
            name='device_index',
            field=core.fields.BlindIndexField(purpose='device-id', source='device_id'),
        ),
        migrations.AddField(
            model_name='signinevent',
            name='ip_index',
            field=core.fields.IPAddressIndexField(source='ip_address'),
        ),
        migrations.AddField(
            model_name='signinevent',
            name='ip_network_index',
            field=core.fields.NetworkIndexField(source='ip_address'),
        ),
        migrations.AddField(
            model_name='usersession',
            name='ip_index',
            field=core.fields.IPAddressIndexField(source='ip_address'),
        ),
        migrations.AddField(
            model_name='usersession',
            name='ip_network_index',
            field=core.fields.NetworkIndexField(source='ip_address'),
        ),
        migrations.AlterField(
            model_name='signinevent',
            name='device_id',
            field=core.fields.EncryptedCharField(blank=True, key_scope='system:sign-in', max_length=64, row_field='occurred_at'),
        ),
        migrations.AlterField(
            model_name='signinevent',
            name='ip_address',
            field=core.fields.EncryptedIPAddressField(blank=True, key_scope='system:sign-in', null=True, row_field='occurred_at'),
        ),
        migrations.AlterField(
            model_name='signinevent',
            name='user_agent',
            field=core.fields.EncryptedCharField(blank=True, key_scope='system:sign-in', max_length=300, row_field='occurred_at'),
        ),
        migrations.AlterField(
            model_name='usersession',
            name='ip_address',
            field=core.fields.EncryptedIPAddressField(blank=True, key_scope='field:user_id', null=True),
        ),
        migrations.AlterField(
            model_name='usersession',
            name='user_agent',
            field=core.fields.EncryptedCharField(blank=True, key_scope='field:user_id', max_length=300),
        ),
    ]
