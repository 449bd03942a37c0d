"""A tenant onboarding's domain and company name become encrypted under the organisation's key.

The AlterFields leave the plaintext in the columns; encrypt_columns encrypts it in place.
Reversible: the reverse writes the plaintext back.
"""

from django.db import migrations

import core.fields
from core.migration_ops import encrypt_columns


class Migration(migrations.Migration):

    dependencies = [
        ('licensing', '0010_seat_pool_over_assignment'),
    ]

    operations = [
        migrations.AlterField(
            model_name='tenantonboarding',
            name='company_name',
            field=core.fields.EncryptedCharField(max_length=200),
        ),
        migrations.AlterField(
            model_name='tenantonboarding',
            name='domain',
            field=core.fields.EncryptedCharField(max_length=253),
        ),
        encrypt_columns("licensing", "TenantOnboarding", ["domain", "company_name"]),
    ]
