"""Encrypt the sign-in events' and sessions' addresses, browsers and device ids in place.

Each value left in plaintext by 0007 is encrypted and the address, network and device indexes
are filled (core.migration_ops.encrypt_columns). Reversible: the reverse writes the plaintext back.
"""

from django.db import migrations

from core.migration_ops import encrypt_columns


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_encrypt_sign_in_and_session_addresses"),
    ]

    operations = [
        encrypt_columns("accounts", "SignInEvent", ["ip_address", "user_agent", "device_id"]),
        encrypt_columns("accounts", "UserSession", ["ip_address", "user_agent"]),
    ]
