"""Row-level security on the users table: the person themself, fellow members of the organisations in scope
(read only) and reseller staff while a context is set (read only). See ``core.tenancy.rls_users_enable_sql``
and docs/decisions/043-row-level-security-on-users.md.
"""

from django.db import migrations

from core.tenancy import rls_users_disable_sql, rls_users_enable_sql


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(rls_users_enable_sql())


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(rls_users_disable_sql())


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0007_rls_sessions_devices_passkeys_opt_outs"),
        ("accounts", "0015_neutral_organization_slugs"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
