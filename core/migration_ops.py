"""Migration operations for Postgres-only defence in depth."""

from django.db import migrations

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
