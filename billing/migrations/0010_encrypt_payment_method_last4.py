"""A saved card's last four digits become encrypted under the organisation's key (the registry has
always declared them personal, payment-token category).

The AlterField leaves the plaintext in the column; encrypt_columns encrypts it in place.
Reversible: the reverse writes the plaintext back.
"""

from django.db import migrations

import core.fields
from core.migration_ops import encrypt_columns


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0009_azure_consumption_lines'),
    ]

    operations = [
        migrations.AlterField(
            model_name='paymentmethod',
            name='last4',
            field=core.fields.EncryptedCharField(max_length=4),
        ),
        encrypt_columns("billing", "PaymentMethod", ["last4"]),
    ]
