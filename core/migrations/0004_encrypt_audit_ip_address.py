"""The audit events' IP address becomes encrypted under the audit key, bound to the sequence.

The chain's hash covers the plaintext (core.audit._canonical decrypts it), so chains written
before this migration still verify: the plaintext is encrypted exactly as Postgres printed it.
"""

from django.db import migrations

import core.fields
from core.migration_ops import encrypt_columns


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0003_field_lock_restriction_and_conflicts'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='ip_address',
            field=core.fields.EncryptedIPAddressField(blank=True, key_scope='system:audit', null=True, row_field='sequence'),
        ),
        encrypt_columns("core", "AuditEvent", ["ip_address"]),
    ]
