"""Encrypt the Microsoft tenant and Partner Center customer ids in place and fill their indexes (see 0011).

Reversible: the reverse writes the plaintext back (core.migration_ops.encrypt_columns).
"""

from django.db import migrations

from core.migration_ops import encrypt_columns


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0011_encrypt_microsoft_tenant_ids"),
    ]

    operations = [
        encrypt_columns("accounts", "MicrosoftTenant", ["tenant_id", "partner_customer_id"]),
    ]
