"""Migration operations: Postgres-only defence in depth, and encrypting plaintext columns in place."""

from django.db import migrations, models

from .fields import BlindIndexField
from .tenancy import rls_disable_sql, rls_enable_sql


class EnableRowLevelSecurity(migrations.operations.base.Operation):
    """Enable the tenant isolation policy on a model's table (no-op off Postgres)."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str):
        self.model_name = model_name

    def state_forwards(self, app_label, state):
        pass

    def _table(self, app_label, state):
        return state.apps.get_model(app_label, self.model_name)._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(rls_enable_sql(self._table(app_label, to_state)))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(rls_disable_sql(self._table(app_label, from_state)))

    def describe(self):
        return f"Enable row-level security on {self.model_name}"

    def deconstruct(self):
        return (self.__class__.__name__, [self.model_name], {})


def _migration_row(Model, field_names, row) -> models.Model:
    """A bare instance carrying what the fields' key scope and row binding read."""
    return Model(**{name: row[name] for name in _context_attnames(Model, field_names)})


def _context_attnames(Model, field_names) -> list[str]:
    names = {Model._meta.pk.attname}
    for name in field_names:
        names.update(Model._meta.get_field(name).binding_attnames)
    return sorted(names)


def _column_text(value) -> str:
    # A Postgres inet column altered to text keeps a full-length mask ("203.0.113.9/32"); the
    # field always read it without one.
    text = str(value)
    if text.endswith("/32") or text.endswith("/128"):
        return text.rsplit("/", 1)[0]
    return text


def encrypt_columns(app_label: str, model_name: str, field_names: list[str], batch: int = 500):
    """A RunPython step for after an AlterField from a plaintext type to an encrypted one.

    The plaintext is still in the column; each non-null value is encrypted in place (empty ones
    too: an encrypted field reads every non-null value as ciphertext) and the blind indexes whose
    source is one of ``field_names`` are filled. The reverse writes the plaintext back.
    """

    def indexes_of(Model):
        return [f for f in Model._meta.concrete_fields if isinstance(f, BlindIndexField) and f.source in field_names]

    def forwards(apps, schema_editor):
        Model = apps.get_model(app_label, model_name)
        fields = [Model._meta.get_field(name) for name in field_names]
        indexes = indexes_of(Model)
        context = _context_attnames(Model, field_names)
        columns = sorted({*context, *(f.attname for f in fields)})
        rows = Model._base_manager.order_by("pk").values(*columns)
        for row in rows.iterator(chunk_size=batch):
            instance = _migration_row(Model, field_names, row)
            updates, plaintexts = {}, {}
            for field in fields:
                raw = row[field.attname]
                if raw is None:
                    plaintexts[field.name] = None
                    continue
                plaintexts[field.name] = field.from_plaintext(_column_text(raw))
                updates[field.attname] = field.encrypt_for(instance, plaintexts[field.name])
            for index in indexes:
                updates[index.attname] = index.index_of(plaintexts[index.source])
            if updates:
                Model._base_manager.filter(pk=row[Model._meta.pk.attname]).update(**updates)

    def backwards(apps, schema_editor):
        Model = apps.get_model(app_label, model_name)
        fields = [Model._meta.get_field(name) for name in field_names]
        context = _context_attnames(Model, field_names)
        columns = sorted({*context, *(f.attname for f in fields)})
        table = schema_editor.quote_name(Model._meta.db_table)
        pk_column = schema_editor.quote_name(Model._meta.pk.column)
        for row in Model._base_manager.order_by("pk").values(*columns).iterator(chunk_size=batch):
            instance = _migration_row(Model, field_names, row)
            for field in fields:
                ciphertext = row[field.attname]
                if ciphertext is None:
                    continue
                plaintext = field.to_plaintext(field.decrypt_for(instance, ciphertext))
                # The field refuses plaintext writes, so the reverse step writes the column directly.
                column = schema_editor.quote_name(field.column)
                pk = Model._meta.pk.get_db_prep_value(row[Model._meta.pk.attname], schema_editor.connection)
                with schema_editor.connection.cursor() as cursor:
                    # Names quoted by the schema editor; values are parameters.
                    cursor.execute(f"UPDATE {table} SET {column} = %s WHERE {pk_column} = %s", [plaintext, pk])  # noqa: S608

    return migrations.RunPython(forwards, backwards)
