"""Encrypt legal holds' reasons and browser opt-out ids in place, and fill the opt-out index (see 0011).

Reversible: the reverse writes the plaintext back (core.migration_ops.encrypt_columns).
"""

from django.db import migrations

from core.migration_ops import encrypt_columns


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0011_encrypt_legal_hold_reason_and_browser_opt_out_id"),
    ]

    operations = [
        encrypt_columns("privacy", "LegalHold", ["reason"]),
        encrypt_columns("privacy", "BrowserOptOut", ["browser_id"]),
    ]
