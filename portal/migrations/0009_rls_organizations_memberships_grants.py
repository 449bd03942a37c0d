"""Row-level security on the tables that decide tenancy: organisations, memberships and staff grants.

Each gets ``tenant_isolation`` (its organisation in ``app.org_ids``, for reading and writing, as every tenant
table has) and ``person_read`` (read only): a person in ``app.user_ids`` reads their own memberships, the
organisations they belong to or hold a staff grant of, and their own grants. The reads that come before either
is known (the middleware's memberships, the admin's grant check, sign-up's slug check, sweeps over every
organisation) run as the system role. The SQL is frozen here, as a migration must be; ``tests/test_rls.py``
checks it against ``core.tenancy.TENANCY_TABLES``. See docs/decisions/044-row-level-security-on-tenancy.md.
"""

from django.db import migrations

from core.tenancy import rls_tenancy_disable_sql, rls_tenancy_enable_sql

TENANCY_TABLES = {
    "accounts_membership": ("organization_id", "user_id = ANY {people}"),
    "accounts_staffgrant": ("organization_id", "staff_id = ANY {people}"),
    "accounts_organization": (
        "id",
        "id IN (SELECT organization_id FROM accounts_membership WHERE user_id = ANY {people}) "
        "OR id IN (SELECT organization_id FROM accounts_staffgrant WHERE staff_id = ANY {people})",
    ),
}


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, (org_column, person_read) in TENANCY_TABLES.items():
        schema_editor.execute(rls_tenancy_enable_sql(table, org_column, person_read))


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in reversed(TENANCY_TABLES):
        schema_editor.execute(rls_tenancy_disable_sql(table))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0008_rls_users"),
        ("accounts", "0015_neutral_organization_slugs"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
