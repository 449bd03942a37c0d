"""Encrypt the organisations' names and their tenants' domains in place (see 0009).

Reversible: the reverse writes the plaintext back (core.migration_ops.encrypt_columns).
"""

from django.db import migrations

from core.migration_ops import encrypt_columns


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_encrypt_organization_names_and_tenant_domains"),
    ]

    operations = [
        encrypt_columns("accounts", "Organization", ["legal_name", "business_name"]),
        encrypt_columns("accounts", "MicrosoftTenant", ["primary_domain", "verified_domains"]),
    ]
