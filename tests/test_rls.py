"""Row-level security on Postgres: defence in depth behind the tenant-scoped ORM.

The policies bind every role that does not own the tables (the application role in
production). These tests assume such a role, ``portal_rls_probe``, for the length of
one transaction. See docs/decisions/002-tenancy-enforcement.md.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiKey
from accounts.tests.factories import OrganizationFactory
from core.models import TenantModel
from core.registry import declaration_for
from core.tenancy import RLS_BYPASS_SETTING, RLS_SETTING, tenant_context, unscoped_no_tenant
from tests.tenant_objects import tenant_models

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-level security needs PostgreSQL"),
]

PROBE_ROLE = "portal_rls_probe"


def fetch(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall() if cursor.description else []


def current_scope():
    return fetch("SELECT current_setting(%s, true)", [RLS_SETTING])[0][0]


@pytest.fixture
def probe_role(db):
    """Become a role that does not own the tables (RLS binds it) until the end of the test's transaction."""
    table = ApiKey._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DO $$ BEGIN CREATE ROLE {PROBE_ROLE} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {PROBE_ROLE}")
        cursor.execute(f"GRANT SELECT, INSERT ON {table} TO {PROBE_ROLE}")

    class Probe:
        def __enter__(self):
            fetch(f"SET LOCAL ROLE {PROBE_ROLE}")
            return self

        def __exit__(self, *exc):
            fetch("RESET ROLE")

    return Probe()


@pytest.fixture
def two_orgs(db):
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    for org, prefix in ((org_a, "rlsa"), (org_b, "rlsb")):
        for i in range(2):
            ApiKey.unscoped_objects.create(
                organization=org, name=f"{prefix}{i}", prefix=f"{prefix}{i}", secret_hash="x", role="viewer"
            )
    return org_a, org_b


def test_no_rows_without_a_tenant_setting(probe_role, two_orgs):
    fetch("SELECT set_config(%s, '', true)", [RLS_SETTING])
    assert fetch("SELECT count(*) FROM accounts_apikey")[0][0] == 4  # the owner bypasses RLS
    with probe_role:
        assert fetch("SELECT current_user")[0][0] == PROBE_ROLE
        assert fetch("SELECT * FROM accounts_apikey") == []


def test_only_the_scoped_organisations_rows(probe_role, two_orgs):
    org_a, org_b = two_orgs
    with probe_role:
        fetch("SELECT set_config(%s, %s, true)", [RLS_SETTING, str(org_a.pk)])
        rows = fetch("SELECT organization_id FROM accounts_apikey")
        assert len(rows) == 2 and {str(r[0]) for r in rows} == {str(org_a.pk)}
        fetch("SELECT set_config(%s, %s, true)", [RLS_SETTING, f"{org_a.pk},{org_b.pk}"])
        assert fetch("SELECT count(*) FROM accounts_apikey")[0][0] == 4


def test_insert_into_another_organisation_is_refused(probe_role, two_orgs):
    org_a, org_b = two_orgs
    insert = (
        "INSERT INTO accounts_apikey (id, created_at, updated_at, organization_id, name, prefix, secret_hash, role) "
        "VALUES (%s, now(), now(), %s, 'x', %s, 'x', 'viewer')"
    )
    with probe_role:
        fetch("SELECT set_config(%s, %s, true)", [RLS_SETTING, str(org_a.pk)])
        fetch(insert, [uuid.uuid4(), org_a.pk, "rlsok"])  # its own organisation: allowed
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            fetch(insert, [uuid.uuid4(), org_b.pk, "rlsbad"])
    assert not ApiKey.unscoped_objects.filter(prefix="rlsbad").exists()


@pytest.mark.django_db(transaction=True)
def test_tenant_context_setting_is_transaction_local():
    org = OrganizationFactory()
    with tenant_context(org):
        assert current_scope() == str(org.pk)
    assert current_scope() in (None, "")  # the transaction ended, so did the setting

    other = OrganizationFactory()
    with transaction.atomic():
        with tenant_context(org):
            with tenant_context(other):
                assert current_scope() == str(other.pk)
            assert current_scope() == str(org.pk)  # the outer scope is restored
        assert current_scope() in (None, "")
    assert current_scope() in (None, "")



def _set_configs(captured) -> int:
    return sum("set_config" in query["sql"] for query in captured.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_a_context_that_is_its_own_transaction_leaves_no_setting_without_a_second_round_trip():
    # With kept connections (decision 023) the next request reuses this connection: nothing may linger.
    org = OrganizationFactory()
    with CaptureQueriesContext(connection) as own, tenant_context(org):
        assert current_scope() == str(org.pk)
    assert current_scope() in (None, "")
    with CaptureQueriesContext(connection) as bypass, unscoped_no_tenant():
        assert fetch("SELECT current_setting(%s, true)", [RLS_BYPASS_SETTING])[0][0] == "on"
    assert fetch("SELECT current_setting(%s, true)", [RLS_BYPASS_SETTING])[0][0] in (None, "")
    # The commit ends the setting, so no restoring set_config is sent; nested, the outer scope is restored.
    assert _set_configs(own) == 1 and _set_configs(bypass) == 1
    with transaction.atomic(), CaptureQueriesContext(connection) as nested:
        with tenant_context(org):
            pass
        assert current_scope() in (None, "")
    assert _set_configs(nested) == 2


def _needs_rls(model: type[TenantModel]) -> bool:
    declaration = declaration_for(model)
    return model is ApiKey or bool(declaration and declaration.personal)


@pytest.mark.django_db
def test_tables_with_personal_data_or_credentials_have_rls():
    models = [m for m in tenant_models() if _needs_rls(m)]
    assert ApiKey in models
    missing = []
    for model in models:
        table = model._meta.db_table
        rows = fetch(
            "SELECT c.relrowsecurity, EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.relname "
            "AND p.policyname = 'tenant_isolation') FROM pg_class c WHERE c.relname = %s AND c.relkind = 'r'",
            [table],
        )
        if not rows or not all(rows[0]):
            missing.append(f"{model._meta.label} ({table})")
    assert not missing, (
        "Tenant tables holding personal data or credentials need row-level security: add "
        "core.migration_ops.EnableRowLevelSecurity('<Model>') to a migration of their app:\n" + "\n".join(missing)
    )
