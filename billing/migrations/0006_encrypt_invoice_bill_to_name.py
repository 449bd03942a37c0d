"""The name an invoice was billed to becomes encrypted under the organisation's key.

The AlterField leaves the plaintext in the column; encrypt_columns encrypts it in place.
Reversible: the reverse writes the plaintext back.
"""

from django.db import migrations

import core.fields
from core.migration_ops import encrypt_columns


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0005_dunning_reminders'),
    ]

    operations = [
        migrations.AlterField(
            model_name='invoice',
            name='bill_to_name',
            field=core.fields.EncryptedCharField(max_length=200),
        ),
        encrypt_columns("billing", "Invoice", ["bill_to_name"]),
    ]
