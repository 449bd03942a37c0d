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


# Rows per UPDATE of a migration that encrypts in place: bulk_update writes a CASE per column with a
# branch per row, which the database evaluates per row; a hundred keeps each statement a few milliseconds.
ENCRYPT_UPDATE_BATCH = 100


def _write_chunk(Model, instances, field_names) -> None:
    if instances:
        Model._base_manager.bulk_update(instances, field_names, batch_size=ENCRYPT_UPDATE_BATCH)


def _settle_deferred_checks(schema_editor) -> None:
    """Run the deferred foreign-key checks the updates queued, so that a schema change later in the same
    migration (a constraint on the new index, a column type) does not meet Postgres's "cannot ALTER TABLE
    because it has pending trigger events"."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


def encrypt_columns(app_label: str, model_name: str, field_names: list[str], batch: int = 500):
    """A RunPython step for after an AlterField from a plaintext type to an encrypted one.

    The plaintext is still in the column; each non-null value is encrypted in place (empty ones
    too: an encrypted field reads every non-null value as ciphertext) and the blind indexes whose
    source is one of ``field_names`` are filled, ``batch`` rows read at a time and written with a
    batched ``UPDATE`` per hundred. The reverse writes the plaintext back.
    """

    def indexes_of(Model):
        return [f for f in Model._meta.concrete_fields if isinstance(f, BlindIndexField) and f.source in field_names]

    def forwards(apps, schema_editor):
        Model = apps.get_model(app_label, model_name)
        fields = [Model._meta.get_field(name) for name in field_names]
        indexes = indexes_of(Model)
        context = _context_attnames(Model, field_names)
        columns = sorted({*context, *(f.attname for f in fields)})
        written = [*(f.name for f in fields), *(i.name for i in indexes)]
        rows = Model._base_manager.order_by("pk").values(*columns)
        chunk = []
        for row in rows.iterator(chunk_size=batch):
            instance = _migration_row(Model, field_names, row)
            plaintexts = {}
            for field in fields:
                raw = row[field.attname]
                plaintexts[field.name] = None if raw is None else field.from_plaintext(_column_text(raw))
                ciphertext = None if raw is None else field.encrypt_for(instance, plaintexts[field.name])
                # As core.fields.encrypted_bulk_update does: the ciphertext goes in as a ready value,
                # so the field's refusal of plaintext writes is not in the way.
                instance.__dict__[field.attname] = models.Value(ciphertext, output_field=field)
            for index in indexes:
                setattr(instance, index.attname, index.index_of(plaintexts[index.source]))
            chunk.append(instance)
            if len(chunk) >= batch:
                _write_chunk(Model, chunk, written)
                chunk = []
        _write_chunk(Model, chunk, written)
        _settle_deferred_checks(schema_editor)

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
        _settle_deferred_checks(schema_editor)

    return migrations.RunPython(forwards, backwards)
