"""Tenancy that fails closed.

The organisations in scope live in a context variable. Tenant models' default
manager filters by it and returns no rows when it is unset. On Postgres the same
ids are written transaction-locally to ``app.org_ids`` so row-level security
policies agree with the ORM (see docs/decisions/002-tenancy-enforcement.md).

Escape hatches are named ``unscoped_*`` and are allowed only in staff-grant code,
cross-tenant system sweeps that re-enter a context per organisation, and
migrations. ``tests/test_tenancy_guard.py`` keeps the list of callers short.
Cross-tenant reads run on the system database alias (a role with ``BYPASSRLS`` in
production), never through a setting the application role could set
(docs/decisions/025-rls-without-a-bypass.md).
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, router, transaction

_org_ids: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("org_ids", default=None)
# True inside unscoped_no_tenant(): the router sends queries to the system alias.
_system: contextvars.ContextVar[bool] = contextvars.ContextVar("tenancy_system", default=False)
# The scope written to the default connection's app.org_ids. Apart from _org_ids because, with a system
# connection of its own, unscoped_no_tenant() leaves the default connection's setting as it was.
_db_scope: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("tenancy_db_scope", default=None)

RLS_SETTING = "app.org_ids"
# The people whose own rows (sign-in attempts, login monitoring's findings, tracked sessions, second-factor
# devices, passkeys, their own user row: decision 043) are in scope: the person signing in or looking at their
# activity, sessions and devices, the subject of a privacy request, or the members of the organisations a
# security responder's grant covers.
# See docs/decisions/032-row-level-security-per-person.md and 035-row-level-security-on-sessions-and-devices.md.
RLS_PERSON_SETTING = "app.user_ids"
# Tables owned by one person rather than an organisation, with the per-person policy (portal 0006: sign-ins and
# login findings; portal 0007: tracked sessions, second-factor devices and passkeys). Reads across people
# (login monitoring's source history, retention purges) and the middleware's lookup of the session's device
# (accounts.selectors.session_device, keyed by the session's own device id) run as the system role.
PERSON_SCOPED_TABLES = frozenset(
    {
        "security_signinevent",
        "security_loginsignal",
        "accounts_usersession",
        "accounts_totpdevice",
        "accounts_recoverycodedevice",
        "django_otp_webauthn_webauthncredential",
        "django_otp_webauthn_webauthnuserhandle",
        "django_otp_webauthn_webauthnattestation",
    }
)
# Person-scoped tables with no user column of their own: the row's owner is the owner of the row it points to,
# whose table has the per-person policy too (a passkey's attestation belongs to the passkey).
PERSON_SCOPED_THROUGH = {
    "django_otp_webauthn_webauthnattestation": ("credential_id", "django_otp_webauthn_webauthncredential"),
}
# Tables the application role may only append to (portal 0007): an anonymous browser's opt-out evidence, which
# belongs to no person and is never read back by the application; retention purges it as the system role.
APPEND_ONLY_TABLES = frozenset({"privacy_browseroptout"})
_db_people: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("tenancy_db_people", default=None)
# The privacy requests in scope (portal 0011, docs/decisions/048-row-level-security-on-privacy-requests.md): the
# one request a privacy officer's page, an anonymous requester's code form, an export or an erasure is working on.
# With the requester's own account in app.user_ids, the only ways to a request, its history and its documents.
RLS_PRIVACY_REQUEST_SETTING = "app.privacy_request_ids"
# The tables of the privacy request workflow, with the column that names the request (``id`` for the request itself).
PRIVACY_REQUEST_TABLES = {
    "privacy_privacyrequest": "id",
    "privacy_privacyrequestevent": "request_id",
    "privacy_authorizationdocument": "request_id",
}
_db_requests: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("tenancy_db_requests",
                                                                                      default=None)


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


def _set_rls_setting(setting: str, ids: tuple[str, ...] | None) -> None:
    """Set a row-level-security setting for the rest of the transaction (``set_config(..., true)``)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [setting, ",".join(ids or ())])


def _set_database_scope(ids: tuple[str, ...] | None) -> None:
    _set_rls_setting(RLS_SETTING, ids)


@contextmanager
def tenant_context(*orgs, savepoint: bool = True) -> Iterator[None]:
    """Scope everything inside to the given organisations, in one transaction.

    The Postgres setting is transaction-local (``set_config(..., true)``), never
    per connection, so a pooled connection cannot carry one tenant's scope into
    another request.

    ``savepoint=False``: inside an enclosing transaction, take no savepoint (two round trips fewer);
    an exception leaving the block then marks the enclosing transaction for rollback. Only for a
    caller whose exceptions end that transaction anyway: the staff admin's views, each one request
    under ``ATOMIC_REQUESTS``.
    """
    ids = _normalise(orgs)
    previous = _db_scope.get()
    token = _org_ids.set(ids)
    db_token = _db_scope.set(ids)
    # A sweep reading on the system alias re-enters a tenant to write: that runs on default again.
    system_token = _system.set(False)
    try:
        outermost = _begins_transaction()
        with transaction.atomic(using=DEFAULT_DB_ALIAS, savepoint=savepoint):
            _set_database_scope(ids)
            try:
                yield
            finally:
                if not outermost and connection.in_atomic_block and not connection.needs_rollback:
                    _set_database_scope(previous)
    finally:
        _system.reset(system_token)
        _db_scope.reset(db_token)
        _org_ids.reset(token)


@contextmanager
def tenant_read_context(organization) -> Iterator[None]:
    """Reads of ``organization``'s rows: the tenant context already open when it is exactly this one, else a new one.

    A page renders inside its view's tenant context (``accounts.org_views.OrganizationMixin``), so the header's
    reads (the notification bell) need no context of their own; entering one anyway would cost a savepoint and
    two ``set_config`` round trips on every page. Only for reads, or for a write that takes its own savepoint
    (``core.disclosures``' atomic writers): a write wants a savepoint so that a caught error rolls back no more
    than it.
    """
    ids = _normalise([organization])
    if (
        _org_ids.get() == ids
        and _db_scope.get() == ids
        and not _system.get()
        and (connection.vendor != "postgresql" or connection.in_atomic_block)
    ):
        yield
        return
    with tenant_context(organization):
        yield


def _set_people_scope(ids: tuple[str, ...] | None) -> None:
    _set_rls_setting(RLS_PERSON_SETTING, ids)


@contextmanager
def person_context(*users) -> Iterator[None]:
    """Let row-level security show the given people's own rows (``PERSON_SCOPED_TABLES``), in one transaction.

    The database-side twin of filtering by user: the ORM queries inside still filter by the person
    themselves; this is the net under them, so a forgotten filter or an injection reads nobody
    else's sign-ins. Like the tenant setting it is transaction-local. ``None`` entries are ignored:
    an attempt against an unknown address has no person, and its row has none either.
    """
    ids = _normalise(user for user in users if user is not None)
    previous = _db_people.get()
    token = _db_people.set(ids)
    try:
        outermost = _begins_transaction()
        with transaction.atomic(using=DEFAULT_DB_ALIAS):
            _set_people_scope(ids)
            try:
                yield
            finally:
                if not outermost and connection.in_atomic_block and not connection.needs_rollback:
                    _set_people_scope(previous)
    finally:
        _db_people.reset(token)


@contextmanager
def privacy_request_context(*requests) -> Iterator[None]:
    """Let row-level security show the given privacy requests, their history and documents, in one transaction.

    For the code that works on one request whoever asks: the officer's desk and its actions, the anonymous
    requester's code form (the signed link names the request), intake creating a request under its new id,
    exports and erasures. As ``person_context``, transaction-local and restored on leaving; it widens nothing
    else. ``None`` entries are ignored.
    """
    ids = _normalise(request for request in requests if request is not None)
    previous = _db_requests.get()
    token = _db_requests.set(ids)
    try:
        outermost = _begins_transaction()
        with transaction.atomic(using=DEFAULT_DB_ALIAS):
            _set_rls_setting(RLS_PRIVACY_REQUEST_SETTING, ids)
            try:
                yield
            finally:
                if not outermost and connection.in_atomic_block and not connection.needs_rollback:
                    _set_rls_setting(RLS_PRIVACY_REQUEST_SETTING, previous)
    finally:
        _db_requests.reset(token)


def _begins_transaction() -> bool:
    """Whether the next ``atomic()`` starts (and at its end finishes) a transaction.

    Its commit or rollback then ends the transaction-local setting by itself, so restoring the
    outer scope would be a round trip spent on a setting that is about to vanish.
    """
    return not connection.in_atomic_block and connection.get_autocommit()


@contextmanager
def unscoped_no_tenant(*, atomic: bool = True) -> Iterator[None]:
    """Leave any tenant context to read across organisations, in one transaction of the system alias.

    For the few reads that must precede or span tenants: authentication deciding
    the tenant from a credential, invitation tokens, system sweeps that re-enter a
    context per organisation, key rotation and audit verification (every caller is on
    ``tests/test_tenancy_guard.py``'s allow-list). The ORM default managers still
    return nothing here; use ``unscoped_objects``.

    Every query inside runs on ``settings.TENANCY_SYSTEM_DATABASE`` (``SystemDatabaseRouter``):
    in production a separate connection as a role with ``BYPASSRLS``; without
    ``SYSTEM_DATABASE_URL`` (SQLite, tests, single-role development) the default connection,
    with the tenant setting cleared, so a role bound by row-level security sees nothing.
    The policies honour no setting the application role could turn on
    (docs/decisions/025-rls-without-a-bypass.md). Rows read here come from another
    connection's committed state: re-read with a lock inside ``tenant_context`` before
    changing anything the default connection may hold.

    ``atomic=False``, for a single read: on the system connection the statement runs in autocommit,
    without ``BEGIN`` and ``COMMIT`` round trips (the API key lookup on every API request). On the default
    connection inside a transaction it runs in that transaction when no tenant setting is written there
    (the middleware's reads before any context, and every test's), else in a savepoint that clears the
    setting and puts it back.
    """
    alias = system_database()
    on_default = alias == DEFAULT_DB_ALIAS
    setting_written = on_default and connection.in_atomic_block and _db_scope.get() is not None
    if not atomic and not setting_written:
        # The default connection holds no tenant setting here: no transaction is open (the setting is
        # transaction-local), or the open one has none written. An unscoped read on it is fail-closed; the
        # system role bypasses RLS.
        org_token = _org_ids.set(None)
        system_token = _system.set(True)
        try:
            yield
        finally:
            _system.reset(system_token)
            _org_ids.reset(org_token)
        return
    previous = _db_scope.get()
    org_token = _org_ids.set(None)
    db_token = _db_scope.set(None) if on_default else None
    system_token = _system.set(True)
    try:
        outermost = _begins_transaction()
        with transaction.atomic(using=alias):
            if on_default:
                _set_database_scope(None)
            try:
                yield
            finally:
                if on_default and not outermost and connection.in_atomic_block and not connection.needs_rollback:
                    _set_database_scope(previous)
    finally:
        _system.reset(system_token)
        if db_token is not None:
            _db_scope.reset(db_token)
        _org_ids.reset(org_token)


def bound_to_default_alias(instances):
    """Hand rows read inside ``unscoped_no_tenant()`` to the rest of the request as rows of the default alias.

    ``SystemDatabaseRouter`` names an alias for every query by context, never by the instance, so a later
    ``save()`` or related lookup already runs on the default connection; resetting ``_state.db`` keeps it so
    should any code or router fall back to the instance's alias (Django's default when routers have no
    opinion), which would write as the role that bypasses row-level security. Returns ``instances``; a None
    among them (a lookup that found nobody) stays None.
    """
    for instance in instances:
        if instance is None:
            continue
        instance._state.db = DEFAULT_DB_ALIAS
        for related in instance._state.fields_cache.values():
            if related is not None and hasattr(related, "_state"):
                related._state.db = DEFAULT_DB_ALIAS
    return instances


def system_database() -> str:
    """The alias the cross-tenant reads use: ``system`` when configured, else ``default``."""
    return getattr(settings, "TENANCY_SYSTEM_DATABASE", DEFAULT_DB_ALIAS)


def row_security_hides(model) -> bool:
    """Whether row-level security filters ``model``'s table for the role that a read of it goes to now (through the
    router: inside ``unscoped_no_tenant()`` the system alias). True for the application role, even on the system
    alias when ``SYSTEM_DATABASE_URL`` is not set; False for the system role, the tables' owner and off Postgres.

    For the readers that must see every row or refuse to answer (legal holds before a purge, opt-outs before a
    disclosure): an empty answer from a role that sees nothing would let through what must be stopped."""
    alias = router.db_for_read(model)
    if connections[alias].vendor != "postgresql":
        return False
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT row_security_active(%s::regclass)", [model._meta.db_table])
        return bool(cursor.fetchone()[0])


class SystemDatabaseRouter:
    """Sends every query inside ``unscoped_no_tenant()`` to the system alias, everything else to default.

    It always names an alias rather than deferring to the instance's hint: a row read on the
    system connection and then saved inside ``tenant_context`` must be written by the
    application role, under row-level security, not by the role that bypasses it.
    """

    def db_for_read(self, model, **hints):
        return system_database() if _system.get() else DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return system_database() if _system.get() else DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # both aliases are the same database, as different roles

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS  # migrations run once, as the owner


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


def _rls_ids_sql(setting: str) -> str:
    return f"((SELECT string_to_array(nullif(current_setting('{setting}', true), ''), ','))::uuid[])"


def rls_scope_sql() -> str:
    # A scalar subquery, cast to one uuid[], is evaluated once per statement rather than per
    # row; an unset or empty setting gives NULL, which matches nothing.
    return _rls_ids_sql(RLS_SETTING)


def rls_people_sql() -> str:
    """``app.user_ids`` as one uuid[], evaluated once per statement (as :func:`rls_scope_sql`)."""
    return f"((SELECT string_to_array(nullif(current_setting('{RLS_PERSON_SETTING}', true), ''), ','))::uuid[])"


# The tables that decide tenancy (portal 0009, docs/decisions/044-row-level-security-on-tenancy.md): table ->
# (the column naming its organisation, the SQL condition that also lets the people in app.user_ids read a row).
# Writes always need the organisation in app.org_ids: a person's own context reads their memberships, their
# organisations and, for staff, their grants, but cannot plant or change one anywhere.
TENANCY_TABLES = {
    "accounts_organization": (
        "id",
        # The organisations the people in scope belong to, or hold a grant of (a staff member's own grants
        # list which customers they are for). Read under those tables' own policies.
        "id IN (SELECT organization_id FROM accounts_membership WHERE user_id = ANY {people}) "
        "OR id IN (SELECT organization_id FROM accounts_staffgrant WHERE staff_id = ANY {people})",
    ),
    "accounts_membership": ("organization_id", "user_id = ANY {people}"),
    "accounts_staffgrant": ("organization_id", "staff_id = ANY {people}"),
}


def rls_tenancy_enable_sql(table: str, org_column: str, person_read: str) -> str:
    """SQL for a table that decides tenancy: ``tenant_isolation`` on ``org_column`` for reading and writing, as
    every tenant table has, plus ``person_read``, a read-only policy admitting the rows ``person_read`` (with
    ``{people}`` for ``app.user_ids``) names. No setting widens either; reads before anyone is in scope use the
    system role."""
    setting, condition = rls_scope_sql(), person_read.format(people=rls_people_sql())
    return f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        DROP POLICY IF EXISTS tenant_isolation ON {table};
        CREATE POLICY tenant_isolation ON {table}
            USING ({org_column} = ANY {setting})
            WITH CHECK ({org_column} = ANY {setting});
        DROP POLICY IF EXISTS person_read ON {table};
        CREATE POLICY person_read ON {table} FOR SELECT USING ({condition});
    """


def _rls_drop_sql(table: str, *policies: str) -> str:
    """SQL that undoes one of the ``rls_*_enable_sql`` above: drops its ``policies`` and turns row-level security
    off on ``table`` (the migrations' way back)."""
    drops = "".join(f"DROP POLICY IF EXISTS {policy} ON {table};\n" for policy in policies)
    return f"{drops}ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;\n"


def rls_tenancy_disable_sql(table: str) -> str:
    return _rls_drop_sql(table, "person_read", "tenant_isolation")


def rls_enable_sql(
    table: str, *, orgless_rows: bool = False, orgless_reads: bool = False, person_rows: bool = False
) -> str:
    """SQL that enables row-level security on a tenant table.

    The policy binds the application role, which never owns the tables (the
    migration role does). An unset or empty setting matches no rows, so a query
    outside a tenant context fails closed. No session setting widens it: reads that
    must span tenants use the system role, which has ``BYPASSRLS``
    (docs/decisions/025-rls-without-a-bypass.md).

    ``orgless_rows``: the table also holds rows of no organisation (account-level audit
    events). The application role may append and read such rows (``INSERT ... RETURNING``
    needs the new row to be readable) but has no policy to update or delete them.

    ``orgless_reads``: the table holds rows of no organisation that only the system role writes (a
    reconciliation finding about a subscription no customer has); the application role may read them
    and nothing else.

    ``person_rows``: the table's rows may also name one person (``user_id``): a legal hold on a person. The rows
    naming a person of ``app.user_ids`` are admitted too, for reading and writing (``person_context``), whatever
    their organisation.
    """
    setting = rls_scope_sql()
    sql = f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        DROP POLICY IF EXISTS tenant_isolation ON {table};
        CREATE POLICY tenant_isolation ON {table}
            USING (organization_id = ANY {setting})
            WITH CHECK (organization_id = ANY {setting});
        DROP POLICY IF EXISTS orgless_insert ON {table};
        DROP POLICY IF EXISTS orgless_read ON {table};
        DROP POLICY IF EXISTS person_rows ON {table};
    """
    if person_rows:
        people = rls_people_sql()
        sql += f"""
        CREATE POLICY person_rows ON {table} USING (user_id = ANY {people}) WITH CHECK (user_id = ANY {people});
    """
    if orgless_rows:
        sql += f"""
        CREATE POLICY orgless_insert ON {table} FOR INSERT WITH CHECK (organization_id IS NULL);
        CREATE POLICY orgless_read ON {table} FOR SELECT USING (organization_id IS NULL);
    """
    elif orgless_reads:
        sql += f"""
        CREATE POLICY orgless_read ON {table} FOR SELECT USING (organization_id IS NULL);
    """
    return sql


def rls_person_enable_sql(table: str, *, ownerless_rows: bool = True, through: tuple[str, str] | None = None) -> str:
    """SQL that enables the per-person policy on a table owned by one person (``user_id``).

    ``person_isolation`` admits the rows of the people in ``app.user_ids``. With ``ownerless_rows``,
    rows of no person (an attempt against an unknown address, and what monitoring found about it) may
    be appended and read, as org-less audit events are (``INSERT ... RETURNING`` needs the new row to
    be readable), but not changed or deleted by the application role.

    ``through=(column, parent table)``: the table has no user column; a row is admitted when the parent
    row it points to is. The subquery reads the parent under the parent's own policy, so it admits
    exactly the rows of the parents the setting shows.
    """
    people = rls_people_sql()
    if through is not None:
        column, parent = through
        condition = f"{column} IN (SELECT id FROM {parent})"  # noqa: S608 -- names from migrations, not input
    else:
        condition = f"user_id = ANY {people}"
    sql = f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        DROP POLICY IF EXISTS person_isolation ON {table};
        CREATE POLICY person_isolation ON {table}
            USING ({condition})
            WITH CHECK ({condition});
        DROP POLICY IF EXISTS ownerless_insert ON {table};
        DROP POLICY IF EXISTS ownerless_read ON {table};
    """
    if ownerless_rows:
        sql += f"""
        CREATE POLICY ownerless_insert ON {table} FOR INSERT WITH CHECK (user_id IS NULL);
        CREATE POLICY ownerless_read ON {table} FOR SELECT USING (user_id IS NULL);
    """
    return sql


USERS_TABLE = "accounts_user"


def rls_users_enable_sql() -> str:
    """SQL that enables row-level security on the users table (decision 043).

    A person's row is readable and writable by the person themself (``app.user_ids``: sign-in, their
    profile, password and MFA pages, sign-up inserting their own new row). Two read-only policies add
    the people a context legitimately shows: the members of the organisations in ``app.org_ids`` (team
    pages, invitations, notifications, audit actors), through the memberships table and therefore under
    its own policy; and reseller staff, whose names appear in customers' audit logs and staff-access
    pages, but only while some context is set, so a statement with no context reads no row at all.
    Nobody else's row can be changed, deleted or planted by the application role; lookups before the
    person is known (the session's user, sign-in by e-mail) run as the system role.
    """
    orgs, people = rls_scope_sql(), _rls_ids_sql(RLS_PERSON_SETTING)
    table = USERS_TABLE
    return f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        DROP POLICY IF EXISTS user_self ON {table};
        DROP POLICY IF EXISTS user_fellow_member ON {table};
        DROP POLICY IF EXISTS user_staff ON {table};
        CREATE POLICY user_self ON {table}
            USING (id = ANY {people})
            WITH CHECK (id = ANY {people});
        CREATE POLICY user_fellow_member ON {table} FOR SELECT
            USING (EXISTS (
                SELECT 1 FROM accounts_membership member
                WHERE member.user_id = {table}.id AND member.organization_id = ANY {orgs}
            ));
        CREATE POLICY user_staff ON {table} FOR SELECT
            USING (is_staff AND ({orgs} IS NOT NULL OR {people} IS NOT NULL));
    """  # noqa: S608 -- the names and settings of this module, not input


def rls_users_disable_sql() -> str:
    return _rls_drop_sql(USERS_TABLE, "user_staff", "user_fellow_member", "user_self")


def rls_privacy_request_enable_sql(table: str) -> str:
    """SQL for a table of the privacy request workflow (``PRIVACY_REQUEST_TABLES``, decision 048).

    A request is admitted when it is in ``app.privacy_request_ids`` or its requester (the account that asked,
    signed in) is in ``app.user_ids``; its history and documents through their request, read under the request's
    own policy. Nothing else admits a row: not an organisation's context (a customer's administrators are not a
    member's privacy requests' audience), nor any setting; the queue, the metrics, the request records and
    retention read them as the system role.
    """
    column = PRIVACY_REQUEST_TABLES[table]
    requests, people = _rls_ids_sql(RLS_PRIVACY_REQUEST_SETTING), rls_people_sql()
    if column == "id":
        condition = f"id = ANY {requests} OR requester_id = ANY {people}"
    else:
        condition = f"{column} IN (SELECT id FROM privacy_privacyrequest)"  # noqa: S608 -- a name of this module
    return f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        DROP POLICY IF EXISTS request_scope ON {table};
        CREATE POLICY request_scope ON {table}
            USING ({condition})
            WITH CHECK ({condition});
    """


def rls_privacy_request_disable_sql(table: str) -> str:
    return _rls_drop_sql(table, "request_scope")


def rls_append_only_enable_sql(table: str) -> str:
    """SQL that lets the application role append rows to ``table`` and nothing else: no policy admits a read,
    a change or a delete, so it sees zero rows. Only for rows the application never reads back (a plain
    ``INSERT`` without ``RETURNING``: client-side primary keys, decision 005); the system role reads them."""
    return f"""
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        DROP POLICY IF EXISTS append_only ON {table};
        CREATE POLICY append_only ON {table} FOR INSERT WITH CHECK (true);
    """


def rls_append_only_disable_sql(table: str) -> str:
    return _rls_drop_sql(table, "append_only")


def rls_person_disable_sql(table: str) -> str:
    return _rls_drop_sql(table, "ownerless_insert", "ownerless_read", "person_isolation")


def rls_disable_sql(table: str) -> str:
    return _rls_drop_sql(table, "person_rows", "orgless_insert", "orgless_read", "tenant_isolation")
