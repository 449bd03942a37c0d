"""The tenant context and managers themselves: fail closed, scope exactly, restore what was there.

The sweep (tests/test_tenancy_sweep.py) proves no route leaks; these prove the kernel it rests on, so
that a manager returning every row fails here even where a view filters by organisation again.
"""

from __future__ import annotations

import contextvars
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiKey
from accounts.tests.api_support import make_api_key
from accounts.tests.factories import OrganizationFactory
from core.tenancy import (
    RLS_PERSON_SETTING,
    RLS_SETTING,
    TenantContextError,
    current_org_ids,
    person_context,
    rls_disable_sql,
    rls_enable_sql,
    rls_person_disable_sql,
    rls_person_enable_sql,
    tenant_context,
    tenant_read_context,
    unscoped_no_tenant,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_orgs():
    org, other = OrganizationFactory(), OrganizationFactory()
    mine, _ = make_api_key(org)
    theirs, _ = make_api_key(other)
    return org, other, mine, theirs


def _ids(queryset) -> set:
    return set(queryset.values_list("pk", flat=True))


def test_default_manager_returns_nothing_outside_a_context(two_orgs):
    assert current_org_ids() is None
    assert _ids(ApiKey.objects.all()) == set()
    assert ApiKey.objects.count() == 0


def test_default_manager_returns_exactly_the_contexts_rows(two_orgs):
    org, other, mine, theirs = two_orgs
    with tenant_context(org):
        assert _ids(ApiKey.objects.all()) == {mine.pk}
    with tenant_context(other):
        assert _ids(ApiKey.objects.all()) == {theirs.pk}
    with tenant_context(org, other):
        assert _ids(ApiKey.objects.all()) == {mine.pk, theirs.pk}


def test_for_org_scopes_to_the_named_organisation_whatever_the_context(two_orgs):
    org, other, mine, theirs = two_orgs
    assert _ids(ApiKey.objects.for_org(org)) == {mine.pk}
    with tenant_context(other):
        assert _ids(ApiKey.objects.for_org(org)) == {mine.pk}
        assert _ids(ApiKey.objects.all().for_org(other)) == {theirs.pk}
    assert _ids(ApiKey.unscoped_objects.for_org(other)) == {theirs.pk}


def test_for_org_without_an_organisation_is_refused_by_name(two_orgs):
    with pytest.raises(TenantContextError, match=r"^ApiKey\.for_org\(\) needs an organisation\.$"):
        ApiKey.objects.for_org(None)
    with pytest.raises(TenantContextError, match="ApiKey"):
        ApiKey.unscoped_objects.all().for_org(None)


def test_unscoped_objects_see_every_organisation(two_orgs):
    _org, _other, mine, theirs = two_orgs
    assert {mine.pk, theirs.pk} <= _ids(ApiKey.unscoped_objects.all())


def test_context_ids_are_normalised_sorted_and_deduplicated(two_orgs):
    org, other, *_ = two_orgs
    expected = tuple(sorted({str(org.pk), str(other.pk)}))
    with tenant_context(other, org, str(org.pk), uuid.UUID(str(other.pk))):
        assert current_org_ids() == expected
        assert all(isinstance(value, str) for value in current_org_ids())


def test_entering_without_an_organisation_is_refused():
    refused = r"^An organisation is required to enter a tenant context\.$"
    with pytest.raises(TenantContextError, match=refused), tenant_context(None):
        pass
    with pytest.raises(ValueError), tenant_context("not-a-uuid"):
        pass
    assert current_org_ids() is None


def test_tenant_context_restores_the_previous_scope_and_runs_in_a_transaction(two_orgs):
    org, other, *_ = two_orgs
    with tenant_context(org):
        assert connection.in_atomic_block
        with tenant_context(other):
            assert current_org_ids() == (str(other.pk),)
        assert current_org_ids() == (str(org.pk),)
    assert current_org_ids() is None


def test_tenant_context_restores_the_scope_after_an_error(two_orgs):
    org, *_ = two_orgs
    with pytest.raises(RuntimeError), tenant_context(org):
        raise RuntimeError("boom")
    assert current_org_ids() is None


def test_unscoped_no_tenant_leaves_the_context_and_restores_it(two_orgs):
    org, _other, mine, theirs = two_orgs
    with tenant_context(org):
        with unscoped_no_tenant():
            assert connection.in_atomic_block
            assert current_org_ids() is None
            assert _ids(ApiKey.objects.all()) == set()
            assert {mine.pk, theirs.pk} <= _ids(ApiKey.unscoped_objects.all())
        assert current_org_ids() == (str(org.pk),)
        assert _ids(ApiKey.objects.all()) == {mine.pk}
    with pytest.raises(RuntimeError), unscoped_no_tenant():
        raise RuntimeError("boom")
    assert current_org_ids() is None


def test_rls_sql_names_the_table_and_honours_no_bypass():
    sql = rls_enable_sql("accounts_apikey")
    assert RLS_SETTING == "app.org_ids"
    assert "ALTER TABLE accounts_apikey ENABLE ROW LEVEL SECURITY;" in sql
    assert "DROP POLICY IF EXISTS tenant_isolation ON accounts_apikey;" in sql
    assert "CREATE POLICY tenant_isolation ON accounts_apikey" in sql
    scope = "((SELECT string_to_array(nullif(current_setting('app.org_ids', true), ''), ','))::uuid[])"
    assert f"USING (organization_id = ANY {scope})\n" in sql
    assert f"WITH CHECK (organization_id = ANY {scope});" in sql
    # No other setting widens the policy: the application role could set it (decision 025).
    assert sql.count("current_setting(") == 2 and "rls_bypass" not in sql
    assert "CREATE POLICY orgless_insert" not in sql
    orgless = rls_enable_sql("security_auditevent", orgless_rows=True)
    assert "CREATE POLICY orgless_insert ON security_auditevent FOR INSERT WITH CHECK (organization_id IS NULL);" in (
        orgless
    )
    assert "CREATE POLICY orgless_read ON security_auditevent FOR SELECT USING (organization_id IS NULL);" in orgless
    assert "FOR UPDATE" not in orgless and "FOR DELETE" not in orgless
    # The org-less policies come on top of tenant isolation, never instead of it.
    assert orgless.startswith(sql.replace("accounts_apikey", "security_auditevent"))
    undo = rls_disable_sql("accounts_apikey")
    assert "DROP POLICY IF EXISTS tenant_isolation ON accounts_apikey;" in undo
    assert "DROP POLICY IF EXISTS orgless_insert ON accounts_apikey;" in undo
    assert "DROP POLICY IF EXISTS orgless_read ON accounts_apikey;" in undo
    assert "ALTER TABLE accounts_apikey DISABLE ROW LEVEL SECURITY;" in undo


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [name])
        return cursor.fetchone()[0] or ""


@pytest.mark.postgres
def test_postgres_settings_follow_the_context_transaction_locally(two_orgs):
    if connection.vendor != "postgresql":
        pytest.skip("transaction-local settings exist on PostgreSQL only")
    org, other, *_ = two_orgs
    with tenant_context(org, other):
        assert _setting(RLS_SETTING) == ",".join(sorted([str(org.pk), str(other.pk)]))
        with unscoped_no_tenant():
            # Single-role (no SYSTEM_DATABASE_URL): the default connection, with no tenant in scope.
            assert _setting(RLS_SETTING) == ""
            assert _setting("app.rls_bypass") == ""  # nothing sets a bypass any more
        assert _setting(RLS_SETTING) == ",".join(sorted([str(org.pk), str(other.pk)]))
        with tenant_context(other):
            assert _setting(RLS_SETTING) == str(other.pk)
        assert _setting(RLS_SETTING) == ",".join(sorted([str(org.pk), str(other.pk)]))
    assert _setting(RLS_SETTING) == ""


def _set_configs(captured) -> int:
    return sum("set_config" in query["sql"] for query in captured.captured_queries)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_context_that_is_its_own_transaction_leaves_no_setting_without_a_second_round_trip():
    if connection.vendor != "postgresql":
        pytest.skip("transaction-local settings exist on PostgreSQL only")
    # With kept connections (decision 023) the next request reuses this connection: nothing may linger.
    org = OrganizationFactory()
    with CaptureQueriesContext(connection) as own, tenant_context(org):
        assert _setting(RLS_SETTING) == str(org.pk)
    assert _setting(RLS_SETTING) == ""
    with CaptureQueriesContext(connection) as cross, unscoped_no_tenant():
        assert _setting(RLS_SETTING) == ""
    # The commit ends the setting, so no restoring set_config is sent; nested, the outer scope is restored.
    assert _set_configs(own) == 1 and _set_configs(cross) == 1
    with transaction.atomic(), CaptureQueriesContext(connection) as nested:
        with tenant_context(org):
            pass
        assert _setting(RLS_SETTING) == ""
    assert _set_configs(nested) == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_scope_ends_with_its_context_inside_a_transaction_the_caller_manages_by_hand():
    """With autocommit off, ``atomic()`` neither begins nor commits: the transaction, and a setting, outlive it."""
    if connection.vendor != "postgresql":
        pytest.skip("transaction-local settings exist on PostgreSQL only")
    org = OrganizationFactory()
    transaction.set_autocommit(False)
    try:
        with tenant_context(org):
            assert _setting(RLS_SETTING) == str(org.pk)
        assert _setting(RLS_SETTING) == ""
        with person_context(uuid.uuid4()):
            pass
        assert _setting(RLS_PERSON_SETTING) == ""
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)


@pytest.mark.postgres
def test_person_context_sets_the_people_setting_transaction_locally():
    if connection.vendor != "postgresql":
        pytest.skip("transaction-local settings exist on PostgreSQL only")
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    with person_context(second, None, first):  # an attempt against an unknown address has no person
        assert _setting(RLS_PERSON_SETTING) == ",".join(sorted([first, second]))
        with person_context(third):
            assert _setting(RLS_PERSON_SETTING) == third
        assert _setting(RLS_PERSON_SETTING) == ",".join(sorted([first, second]))
        assert _setting(RLS_SETTING) == ""  # the people, not the organisations
    assert _setting(RLS_PERSON_SETTING) == ""


@pytest.mark.postgres
def test_a_read_context_in_a_thread_that_inherited_the_scope_opens_its_own_transaction(two_orgs):
    """A thread started with a copy of the context variables (``contextvars.copy_context()``) inherits the
    scope but not the transaction: its connection holds no setting, so the read context must set one."""
    if connection.vendor != "postgresql":
        pytest.skip("transaction-local settings exist on PostgreSQL only")
    org, *_ = two_orgs

    def read_in_thread():
        try:
            assert current_org_ids() == (str(org.pk),) and not connection.in_atomic_block
            with tenant_read_context(org):
                return connection.in_atomic_block, _setting(RLS_SETTING)
        finally:
            connection.close()

    with tenant_context(org), ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(contextvars.copy_context().run, read_in_thread).result() == (True, str(org.pk))
        # On this thread's connection the open context is reused as it is.
        with CaptureQueriesContext(connection) as reused, tenant_read_context(org):
            assert _setting(RLS_SETTING) == str(org.pk)
        assert len(reused.captured_queries) == 1  # the read of the setting above, nothing else


PROBE_ROLE = "portal_tenancy_probe"


def _sql(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def probe_table(db):
    """A table created in the test's transaction, and a role that does not own it (row-level security binds it)."""
    if connection.vendor != "postgresql":
        pytest.skip("row-level security needs PostgreSQL")
    _sql(f"DO $$ BEGIN CREATE ROLE {PROBE_ROLE} NOLOGIN NOBYPASSRLS; EXCEPTION WHEN duplicate_object THEN NULL; END $$")

    def create(name: str, owner_column: str) -> str:
        _sql(f"CREATE TABLE {name} (id serial PRIMARY KEY, {owner_column} uuid NULL, note text NOT NULL)")
        _sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {PROBE_ROLE}")
        _sql(f"GRANT USAGE ON SEQUENCE {name}_id_seq TO {PROBE_ROLE}")
        return name

    return create


def _notes(table: str) -> set[str]:
    return {note for (note,) in _sql(f"SELECT note FROM {table}")}


def test_the_tenant_policy_rls_enable_sql_writes_isolates_organisations_and_admits_orgless_rows(probe_table):
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    for table, orgless_rows in (("tenancy_probe_orgless", True), ("tenancy_probe_plain", False)):
        probe_table(table, "organization_id")
        _sql(rls_enable_sql(table, orgless_rows=orgless_rows))
        _sql(
            f"INSERT INTO {table} (organization_id, note) VALUES (%s, 'mine'), (%s, 'theirs'), (NULL, 'none')",
            [mine, theirs],
        )
        _sql(f"SET LOCAL ROLE {PROBE_ROLE}")
        assert _notes(table) == ({"none"} if orgless_rows else set())  # no organisation in scope
        with tenant_context(mine):
            assert _notes(table) == ({"mine", "none"} if orgless_rows else {"mine"})
            _sql(f"INSERT INTO {table} (organization_id, note) VALUES (%s, 'mine too')", [mine])
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                _sql(f"INSERT INTO {table} (organization_id, note) VALUES (%s, 'forged')", [theirs])
            assert _sql(f"UPDATE {table} SET note = 'changed' WHERE note = 'none' RETURNING id") == []
            assert _sql(f"DELETE FROM {table} WHERE note = 'none' RETURNING id") == []
            assert _sql(f"UPDATE {table} SET note = 'mine, changed' WHERE note = 'mine' RETURNING note") == [
                ("mine, changed",)
            ]
        if orgless_rows:
            _sql(f"INSERT INTO {table} (organization_id, note) VALUES (NULL, 'appended')")
        else:
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                _sql(f"INSERT INTO {table} (organization_id, note) VALUES (NULL, 'appended')")
        _sql("RESET ROLE")
        _sql(rls_disable_sql(table))
        _sql(f"SET LOCAL ROLE {PROBE_ROLE}")
        assert "theirs" in _notes(table)  # disabled: the role reads every row again
        _sql("RESET ROLE")


def test_the_person_policy_shows_the_people_in_scope_and_ownerless_rows(probe_table):
    me, someone = str(uuid.uuid4()), str(uuid.uuid4())
    table = probe_table("tenancy_probe_person", "user_id")
    _sql(rls_person_enable_sql(table))
    _sql(f"INSERT INTO {table} (user_id, note) VALUES (%s, 'me'), (%s, 'someone'), (NULL, 'nobody')", [me, someone])
    _sql(f"SET LOCAL ROLE {PROBE_ROLE}")
    assert _notes(table) == {"nobody"}
    with person_context(me):
        assert _notes(table) == {"me", "nobody"}
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            _sql(f"INSERT INTO {table} (user_id, note) VALUES (%s, 'forged')", [someone])
        assert _sql(f"DELETE FROM {table} WHERE note = 'nobody' RETURNING id") == []
    _sql("RESET ROLE")
    _sql(rls_person_disable_sql(table))
    _sql(f"SET LOCAL ROLE {PROBE_ROLE}")
    assert _notes(table) == {"me", "someone", "nobody"}
    _sql("RESET ROLE")
