"""FieldLock.reason becomes personal and encrypted under the organisation's data key.

Existing reasons are plaintext in the column after the type change; each is encrypted in place
(empty ones too: an encrypted field reads every non-null value as ciphertext). The table now
holds personal data, so it gets the tenant isolation policy like every such table.
"""

import django.core.validators
from django.db import migrations

import core.fields
from core.migration_ops import EnableRowLevelSecurity

BATCH = 500


def _rows(FieldLock):
    return FieldLock._base_manager.order_by("pk").values_list("pk", "organization_id", "reason")


def encrypt_reasons(apps, schema_editor):
    FieldLock = apps.get_model("privacy", "FieldLock")
    field = FieldLock._meta.get_field("reason")
    for pk, organization_id, plaintext in _rows(FieldLock).iterator(chunk_size=BATCH):
        row = FieldLock(pk=pk, organization_id=organization_id)
        ciphertext = field.encrypt_for(row, str(plaintext or ""))
        FieldLock._base_manager.filter(pk=pk).update(reason=ciphertext)


def decrypt_reasons(apps, schema_editor):
    FieldLock = apps.get_model("privacy", "FieldLock")
    field = FieldLock._meta.get_field("reason")
    table = schema_editor.quote_name(FieldLock._meta.db_table)
    column = schema_editor.quote_name(field.column)
    for pk, organization_id, ciphertext in _rows(FieldLock).iterator(chunk_size=BATCH):
        if ciphertext is None:
            continue
        plaintext = field.decrypt_for(FieldLock(pk=pk, organization_id=organization_id), ciphertext)
        # The field refuses plaintext writes, so the reverse step writes the column directly.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [plaintext[:300], pk.hex])


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0001_initial"),
        ("security", "0001_initial"),  # data keys
    ]

    operations = [
        migrations.AlterField(
            model_name="fieldlock",
            name="reason",
            field=core.fields.EncryptedTextField(
                blank=True, default="", validators=[django.core.validators.MaxLengthValidator(300)]
            ),
        ),
        migrations.RunPython(encrypt_reasons, decrypt_reasons),
        EnableRowLevelSecurity("FieldLock"),
    ]
