"""Assignment tallies: per seat pool, how many assignments are in each state, kept by triggers.

Decision 038. The triggers count in the writing statement's transaction, so no writer can skip them: on
PostgreSQL one statement-level trigger per operation reads the statement's transition tables (a bulk
``UPDATE`` of 10,000 rows costs one grouped upsert, and an update that changes no state or pool touches no
tally); on SQLite, which has row triggers only, one upsert per changed row. A delete only subtracts from
a tally that exists, so a cascade that removed the tally first cannot bring it back. Existing assignments
are counted once here.
"""

import uuid

import django.db.models.deletion
import django.db.models.manager
from django.db import migrations, models

from core.migration_ops import EnableRowLevelSecurity

TABLE = "licensing_assignmenttally"
SOURCE = "licensing_licenseassignment"
# The state values of LicenseAssignment.State, each its tally's column.
STATES = ("pending", "assigned", "removing", "failed", "removed", "handover")

_counts = ", ".join(f"count(*) FILTER (WHERE state = '{s}')" for s in STATES)
_columns = ", ".join(STATES)
_add = ", ".join(f"{s} = t.{s} + EXCLUDED.{s}" for s in STATES)
_sub = ", ".join(f"{s} = t.{s} - d.{s}" for s in STATES)
_nonzero = " OR ".join(f"{s} <> 0" for s in STATES)
_delta = ", ".join(f"sum(n) FILTER (WHERE state = '{s}')" for s in STATES)
_coalesced = ", ".join(f"coalesce({s}, 0)" for s in STATES)

POSTGRES_FORWARDS = f"""
CREATE FUNCTION licensing_assignment_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {TABLE} AS t (id, created_at, updated_at, organization_id, sku_id, {_columns})
        SELECT gen_random_uuid(), now(), now(), organization_id, sku_id, {_counts}
        FROM new_rows GROUP BY organization_id, sku_id ORDER BY sku_id
        ON CONFLICT (sku_id) DO UPDATE SET {_add}, updated_at = now();
    ELSIF TG_OP = 'DELETE' THEN
        -- Locked in one order, as the upserts are, so two statements cannot wait on each other's tallies.
        PERFORM 1 FROM {TABLE} WHERE sku_id IN (SELECT sku_id FROM old_rows) ORDER BY sku_id FOR UPDATE;
        UPDATE {TABLE} AS t SET {_sub}, updated_at = now()
        FROM (SELECT sku_id, {_counts} FROM old_rows GROUP BY sku_id) AS d ({"sku_id, " + _columns})
        WHERE t.sku_id = d.sku_id;
    ELSE
        -- What the statement added less what it took away, per pool: a row whose state and pool did not
        -- change cancels out, so an update of other columns writes (and locks) no tally.
        INSERT INTO {TABLE} AS t (id, created_at, updated_at, organization_id, sku_id, {_columns})
        SELECT gen_random_uuid(), now(), now(), organization_id, sku_id, {_coalesced} FROM (
            SELECT organization_id, sku_id, {_delta} FROM (
                SELECT organization_id, sku_id, state, 1 AS n FROM new_rows
                UNION ALL
                SELECT organization_id, sku_id, state, -1 FROM old_rows
            ) AS changes GROUP BY organization_id, sku_id
        ) AS d ({"organization_id, sku_id, " + _columns})
        WHERE {" OR ".join(f"coalesce({s}, 0) <> 0" for s in STATES)}
        ORDER BY sku_id
        ON CONFLICT (sku_id) DO UPDATE SET {_add}, updated_at = now();
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER licensing_assignment_tally_insert AFTER INSERT ON {SOURCE}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION licensing_assignment_tally();
CREATE TRIGGER licensing_assignment_tally_update AFTER UPDATE ON {SOURCE}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION licensing_assignment_tally();
CREATE TRIGGER licensing_assignment_tally_delete AFTER DELETE ON {SOURCE}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION licensing_assignment_tally();
"""

POSTGRES_BACKWARDS = f"""
DROP TRIGGER IF EXISTS licensing_assignment_tally_insert ON {SOURCE};
DROP TRIGGER IF EXISTS licensing_assignment_tally_update ON {SOURCE};
DROP TRIGGER IF EXISTS licensing_assignment_tally_delete ON {SOURCE};
DROP FUNCTION IF EXISTS licensing_assignment_tally();
"""


def _sqlite_add(row: str) -> str:
    values = ", ".join(f"{row}.state = '{s}'" for s in STATES)
    return (
        f"INSERT INTO {TABLE} (id, created_at, updated_at, organization_id, sku_id, {_columns}) "
        f"VALUES (lower(hex(randomblob(16))), strftime('%Y-%m-%d %H:%M:%f', 'now'), "
        f"strftime('%Y-%m-%d %H:%M:%f', 'now'), {row}.organization_id, {row}.sku_id, {values}) "
        f"ON CONFLICT (sku_id) DO UPDATE SET "
        + ", ".join(f"{s} = {s} + excluded.{s}" for s in STATES)
        + ", updated_at = excluded.updated_at;"
    )


def _sqlite_sub(row: str) -> str:
    return (
        f"UPDATE {TABLE} SET " + ", ".join(f"{s} = {s} - ({row}.state = '{s}')" for s in STATES)
        + f", updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE sku_id = {row}.sku_id;"
    )


SQLITE_FORWARDS = [
    f"CREATE TRIGGER licensing_assignment_tally_insert AFTER INSERT ON {SOURCE} BEGIN {_sqlite_add('NEW')} END;",
    f"CREATE TRIGGER licensing_assignment_tally_delete AFTER DELETE ON {SOURCE} BEGIN {_sqlite_sub('OLD')} END;",
    f"CREATE TRIGGER licensing_assignment_tally_update AFTER UPDATE OF state, sku_id ON {SOURCE} "
    f"WHEN OLD.state IS NOT NEW.state OR OLD.sku_id IS NOT NEW.sku_id "
    f"BEGIN {_sqlite_sub('OLD')} {_sqlite_add('NEW')} END;",
]

SQLITE_BACKWARDS = [
    f"DROP TRIGGER IF EXISTS licensing_assignment_tally_{op}" for op in ("insert", "update", "delete")
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise NotImplementedError(f"assignment tallies have no triggers for {schema_editor.connection.vendor}")
        for statement in [statements] if isinstance(statements, str) else statements:
            schema_editor.execute(statement)

    return run


def count_existing(apps, schema_editor):
    """One tally per pool that has assignments, counted as the triggers would have."""
    Assignment = apps.get_model("licensing", "LicenseAssignment")
    Tally = apps.get_model("licensing", "AssignmentTally")
    tallies: dict = {}
    rows = Assignment._base_manager.values_list("organization_id", "sku_id", "state")
    for organization_id, sku_id, state in rows.iterator(chunk_size=5000):
        tally = tallies.setdefault(sku_id, Tally(organization_id=organization_id, sku_id=sku_id))
        setattr(tally, state, getattr(tally, state) + 1)
    Tally._base_manager.bulk_create(tallies.values(), batch_size=500)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0013_staff_grants"),
        ("licensing", "0012_encrypt_directory_user_graph_id"),
    ]

    operations = [
        migrations.CreateModel(
            name="AssignmentTally",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("pending", models.IntegerField(default=0)),
                ("assigned", models.IntegerField(default=0)),
                ("removing", models.IntegerField(default=0)),
                ("failed", models.IntegerField(default=0)),
                ("removed", models.IntegerField(default=0)),
                ("handover", models.IntegerField(default=0)),
                ("organization", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                                   to="accounts.organization")),
                ("sku", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="tally",
                                             to="licensing.tenantsku")),
            ],
            options={
                "abstract": False,
                "base_manager_name": "unscoped_objects",
            },
            managers=[
                ("objects", django.db.models.manager.Manager()),
                ("unscoped_objects", django.db.models.manager.Manager()),
            ],
        ),
        EnableRowLevelSecurity("AssignmentTally"),
        migrations.RunPython(count_existing, migrations.RunPython.noop),
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARDS, "sqlite": SQLITE_FORWARDS}),
            _run({"postgresql": POSTGRES_BACKWARDS, "sqlite": SQLITE_BACKWARDS}),
        ),
    ]
