"""Tenancy that fails closed.

The organisations in scope live in a context variable. Tenant models' default
manager filters by it and returns no rows when it is unset. On Postgres the same
ids are written transaction-locally to ``app.org_ids`` so row-level security
policies agree with the ORM (see docs/decisions/002-tenancy-enforcement.md).

Escape hatches are named ``unscoped_*`` and are allowed only in staff-grant code,
cross-tenant system sweeps that re-enter a context per organisation, and
migrations. ``tests/test_tenancy_guard.py`` keeps the list of callers short.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import connection, models, transaction

_org_ids: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("org_ids", default=None)

RLS_SETTING = "app.org_ids"
RLS_BYPASS_SETTING = "app.rls_bypass"


class TenantContextError(RuntimeError):
    """A tenant-owned write or read was attempted without an organisation in scope."""


def current_org_ids() -> tuple[str, ...] | None:
    return _org_ids.get()


def _normalise(orgs: Iterable) -> tuple[str, ...]:
    ids = []
    for org in orgs:
        if org is None:
            raise TenantContextError("An organisation is required to enter a tenant context.")
        value = getattr(org, "pk", org)
        ids.append(str(uuid.UUID(str(value))))
    return tuple(sorted(set(ids)))


def _set_database_scope(ids: tuple[str, ...] | None) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [RLS_SETTING, ",".join(ids or ())])


@contextmanager
def tenant_context(*orgs) -> Iterator[None]:
    """Scope everything inside to the given organisations, in one transaction.

    The Postgres setting is transaction-local (``set_config(..., true)``), never
    per connection, so a pooled connection cannot carry one tenant's scope into
    another request.
    """
    ids = _normalise(orgs)
    previous = _org_ids.get()
    token = _org_ids.set(ids)
    try:
        outermost = _begins_transaction()
        with transaction.atomic():
            _set_database_scope(ids)
            try:
                yield
            finally:
                if not outermost and connection.in_atomic_block and not connection.needs_rollback:
                    _set_database_scope(previous)
    finally:
        _org_ids.reset(token)


def _begins_transaction() -> bool:
    """Whether the next ``atomic()`` starts (and at its end finishes) a transaction.

    Its commit or rollback then ends the transaction-local setting by itself, so restoring the
    outer scope would be a round trip spent on a setting that is about to vanish.
    """
    return not connection.in_atomic_block and connection.get_autocommit()


@contextmanager
def unscoped_no_tenant() -> Iterator[None]:
    """Leave any tenant context to read across organisations, in one transaction.

    For the few reads that must precede or span tenants: authentication deciding
    the tenant from a credential, invitation tokens, system sweeps that re-enter a
    context per organisation, and staff-grant code. The ORM default managers still
    return nothing here; use ``unscoped_objects``. On Postgres the row-level-security
    bypass is set transaction-locally, so it ends with this block.
    """
    token = _org_ids.set(None)
    try:
        outermost = _begins_transaction()
        with transaction.atomic():
            _set_database_bypass(True)
            try:
                yield
            finally:
                if not outermost and connection.in_atomic_block and not connection.needs_rollback:
                    _set_database_bypass(False)
    finally:
        _org_ids.reset(token)


def _set_database_bypass(enabled: bool) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [RLS_BYPASS_SETTING, "on" if enabled else ""])


class TenantQuerySet(models.QuerySet):
    def for_org(self, organization) -> TenantQuerySet:
        if organization is None:
            raise TenantContextError(f"{self.model.__name__}.for_org() needs an organisation.")
        return self.filter(organization=organization)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """Default manager of tenant models: scoped to the current context, empty without one."""

    def get_queryset(self) -> TenantQuerySet:
        queryset = super().get_queryset()
        ids = _org_ids.get()
        if ids is None:
            return queryset.none()
        return queryset.filter(organization_id__in=ids)

    def for_org(self, organization) -> TenantQuerySet:
        return super().get_queryset().for_org(organization)


class UnscopedManager(models.Manager.from_queryset(TenantQuerySet)):
    """Every organisation's rows. Only for staff-grant code, system sweeps and migrations."""


def rls_enable_sql(table: str) -> str:
    """SQL that enables row-level security on a tenant table.

    The policy binds the application role, which never owns the tables (the
    migration role does). An unset or empty setting matches no rows, so a query
    outside a tenant context fails closed.
    """
    # A scalar subquery, cast to one uuid[], is evaluated once per statement rather than per
    # row; an unset or empty setting gives NULL, which matches nothing.
    setting = f"((SELECT string_to_array(nullif(current_setting('{RLS_SETTING}', true), ''), ','))::uuid[])"
    bypass = f"(SELECT current_setting('{RLS_BYPASS_SETTING}', true) = 'on')"
    return f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        DROP POLICY IF EXISTS tenant_isolation ON {table};
        CREATE POLICY tenant_isolation ON {table}
            USING (organization_id = ANY {setting} OR {bypass})
            WITH CHECK (organization_id = ANY {setting} OR {bypass});
    """


def rls_disable_sql(table: str) -> str:
    return f"""
        DROP POLICY IF EXISTS tenant_isolation ON {table};
        ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;
    """
