"""The database refuses to change or delete an issued invoice, credit note or line, even by raw SQL
(billing/immutability.py; docs/decisions/029-immutable-billing-documents.md)."""

from django.db import migrations

from billing import immutability

# As this migration found the table: the paid amount (0008) did not exist yet, and it may move.
MUTABLE = ("status", "paid_at", "emailed_at", "updated_at")


def forwards(apps, schema_editor):
    immutability.install(schema_editor, mutable=MUTABLE)


def backwards(apps, schema_editor):
    immutability.uninstall(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0006_encrypt_invoice_bill_to_name'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
