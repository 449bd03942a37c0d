"""The tenant context and managers themselves: fail closed, scope exactly, restore what was there.

The sweep (tests/test_tenancy_sweep.py) proves no route leaks; these prove the kernel it rests on, so
that a manager returning every row fails here even where a view filters by organisation again.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from accounts.models import ApiKey
from accounts.tests.api_support import make_api_key
from accounts.tests.factories import OrganizationFactory
from core.tenancy import (
    RLS_SETTING,
    TenantContextError,
    current_org_ids,
    rls_disable_sql,
    rls_enable_sql,
    tenant_context,
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
