"""Row-level security on Postgres: defence in depth behind the tenant-scoped ORM.

The policies bind every role that does not own the tables (the application role in
production). These tests assume such a role, ``portal_rls_probe``, for the length of
one transaction; ``portal_rls_system_probe`` stands for the system role (BYPASSRLS) that
cross-tenant reads use. See docs/decisions/002-tenancy-enforcement.md and
025-rls-without-a-bypass.md.
"""

from __future__ import annotations

import copy
import importlib
import io
import re
import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction
from django.db.utils import load_backend
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiKey, Invitation, MicrosoftTenant
from accounts.tests.api_support import key_client
from accounts.tests.factories import OrganizationFactory
from core.registry import declaration_for
from core.tenancy import (
    APPEND_ONLY_TABLES,
    PERSON_SCOPED_TABLES,
    PERSON_SCOPED_THROUGH,
    RLS_SETTING,
    person_context,
    tenant_context,
    unscoped_no_tenant,
)
from tests.tenant_objects import TenantWorld

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-level security needs PostgreSQL"),
]

PROBE_ROLE = "portal_rls_probe"
SYSTEM_PROBE_ROLE = "portal_rls_system_probe"


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


# Tables that carry an organisation, personal data or credentials but have no tenant_isolation policy,
# each with the reason. The test below fails on any table missing from both the policies and this
# list, and on an entry here that has since gained a policy or no longer exists.
# None now: privacy requests with their history and documents were the last (decision 048).
RLS_EXEMPT: dict[str, str] = {}


def tables_needing_rls() -> dict[str, str]:
    """Every table with an organization_id column (live schema) or a model with personal data (registry).

    Only the tables of managed models (many-to-many tables included) count: a table no migration
    creates (security/tests/vault.py's, made by a test fixture and kept by --reuse-db) could not
    have a policy either.
    """
    managed = {
        m._meta.db_table for m in apps.get_models(include_auto_created=True) if m._meta.managed and not m._meta.proxy
    }
    needing = {
        table: "organization_id column"
        for (table,) in fetch(
            "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t "
            "USING (table_schema, table_name) WHERE c.table_schema = current_schema() "
            "AND c.column_name = 'organization_id' AND t.table_type = 'BASE TABLE'"
        )
    }
    needing = {table: why for table, why in needing.items() if table in managed}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed:
            continue
        declaration = declaration_for(model)
        if declaration and declaration.personal:
            needing.setdefault(model._meta.db_table, "personal fields")
        if model is ApiKey or any("secret" in f.name or "token_hash" in f.name for f in model._meta.concrete_fields):
            needing.setdefault(model._meta.db_table, "credentials")
    return needing


def tables_with_policy(policy: str = "tenant_isolation") -> set[str]:
    return {
        table
        for (table,) in fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relrowsecurity AND EXISTS "
            "(SELECT 1 FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname "
            "AND p.policyname = %s)",
            [policy],
        )
    }


def _set_configs(captured) -> int:
    return sum("set_config" in query["sql"] for query in captured.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_a_single_unscoped_read_outside_a_transaction_costs_no_round_trip_and_inside_one_still_clears_the_scope():
    # The API key lookup (accounts.authentication): one statement, so no BEGIN/COMMIT of its own. Outside any
    # transaction the connection holds no tenant setting (it is transaction-local), so nothing is cleared.
    from licensing.models import TenantSku

    org = OrganizationFactory()
    with CaptureQueriesContext(connection) as alone, unscoped_no_tenant(atomic=False):
        assert list(TenantSku.objects.all()) == []  # the default manager still returns nothing here
        assert not connection.in_atomic_block
    assert [query["sql"] for query in alone.captured_queries] == []
    with tenant_context(org):
        with CaptureQueriesContext(connection) as inside, unscoped_no_tenant(atomic=False):
            assert current_scope() in (None, "")
        assert current_scope() == str(org.pk)
    # Cleared on entry and restored on exit, as without atomic=False.
    assert _set_configs(inside) == (2 if connection.vendor == "postgresql" else 0)


@pytest.mark.django_db
def test_every_table_with_an_organisation_personal_data_or_credentials_has_rls_or_a_reason():
    needing, protected = tables_needing_rls(), (
        tables_with_policy() | tables_with_policy("person_isolation") | tables_with_policy("append_only")
        | tables_with_policy("user_self") | tables_with_policy("request_scope")
    )
    assert {"accounts_apikey", "security_auditevent", "licensing_subscription", "licensing_order"} <= protected
    missing = sorted(f"{table} ({why})" for table, why in needing.items() if table not in protected | RLS_EXEMPT.keys())
    assert not missing, (
        "Tables carrying an organisation, personal data or credentials need row-level security: enable it in a "
        "migration of their app (core.migration_ops.EnableRowLevelSecurity('<Model>')), or add the table to "
        "RLS_EXEMPT with the reason:\n" + "\n".join(missing)
    )
    stale = sorted(set(RLS_EXEMPT) & protected) + sorted(set(RLS_EXEMPT) - set(needing))
    assert not stale, f"RLS_EXEMPT names tables that have a policy or no longer need one: {stale}"


def test_every_tenant_model_table_has_a_policy(db):
    """Everything the ORM scopes with TenantManager is scoped in Postgres too: no exemption applies."""
    from core.tenancy import TenantManager

    tables = {m._meta.db_table for m in apps.get_models() if isinstance(m._default_manager, TenantManager)}
    assert len(tables) > 30
    assert tables - tables_with_policy() == set()


def ensure_probe_role(cursor, role: str, attributes: str) -> None:
    """Create the probe role once, and write the catalog only when it is missing or has other attributes.

    Roles are shared by every database of the server, so parallel test workers (each with its own database)
    meet on the same catalog row: an unconditional ALTER ROLE from two of them fails with "tuple concurrently
    updated". Checking first leaves the common case (the role exists as wanted) without a write."""
    bypass = "true" if attributes == "BYPASSRLS" else "false"
    cursor.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}' AND rolbypassrls = {bypass} "
        f"AND NOT rolcanlogin) THEN BEGIN CREATE ROLE {role} NOLOGIN {attributes}; "
        f"EXCEPTION WHEN duplicate_object THEN ALTER ROLE {role} NOLOGIN {attributes}; END; END IF; END $$"
    )


@pytest.fixture
def roles(db):
    """The application role (RLS binds it) and a system role with BYPASSRLS, both NOLOGIN, for one transaction."""
    with connection.cursor() as cursor:
        for role, attributes in ((PROBE_ROLE, "NOBYPASSRLS"), (SYSTEM_PROBE_ROLE, "BYPASSRLS")):
            ensure_probe_role(cursor, role, attributes)
            cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    return PROBE_ROLE, SYSTEM_PROBE_ROLE


@pytest.fixture
def every_tenant_table_seeded(db):
    from licensing.models import ServiceAnnouncement

    world = TenantWorld()
    orgs = OrganizationFactory(), OrganizationFactory()
    for org in orgs:
        world.build_all(org)
    # The targeting table of announcements is a many-to-many table, which TenantWorld does not build.
    ServiceAnnouncement.objects.create(title="Targeted", body="b", all_organizations=False).organizations.set(orgs)
    return orgs


def _counts(tables) -> dict[str, int]:
    return {table: fetch(f"SELECT count(*) FROM {table}")[0][0] for table in sorted(tables)}


def test_the_application_role_turning_the_old_bypass_on_reads_zero_rows_everywhere(roles, every_tenant_table_seeded):
    app_role, system_role = roles
    protected = tables_with_policy()
    as_owner = _counts(protected)
    empty_as_owner = sorted(table for table, n in as_owner.items() if n == 0)
    assert not empty_as_owner, f"seed at least one row in every protected table: {empty_as_owner}"

    fetch(f"SET LOCAL ROLE {app_role}")
    # Every knob the application role can reach: the old bypass, and an empty tenant scope.
    fetch("SELECT set_config('app.rls_bypass', 'on', true)")
    fetch("SET LOCAL app.rls_bypass = 'on'")
    fetch("SELECT set_config(%s, '', true)", [RLS_SETTING])
    assert _counts(protected) == dict.fromkeys(protected, 0)
    fetch("RESET ROLE")

    fetch(f"SET LOCAL ROLE {system_role}")  # the system role reads every organisation's rows
    assert _counts(protected) == as_owner
    fetch("RESET ROLE")


def test_the_application_role_cannot_reach_the_privileged_path(roles):
    """Each attempt is an error, never a bypass.

    SET SESSION AUTHORIZATION, not SET ROLE: SET ROLE is checked against the session user, which
    here would still be the superuser that runs the tests, as it is never in production.
    """
    app_role, system_role = roles
    fetch(f"SET LOCAL SESSION AUTHORIZATION {app_role}")
    assert fetch("SELECT session_user, current_user")[0] == (app_role, app_role)
    attempts = [
        f"SET ROLE {system_role}",  # become the system role
        f"ALTER ROLE {app_role} BYPASSRLS",  # grant itself the bypass
        "ALTER TABLE accounts_apikey DISABLE ROW LEVEL SECURITY",  # only the owner may
        "DROP POLICY tenant_isolation ON accounts_apikey",
        "ALTER TABLE accounts_apikey NO FORCE ROW LEVEL SECURITY",
        f"GRANT {system_role} TO {app_role}",
    ]
    refused = r"permission denied|must be owner|must be superuser|must have|privilege"
    for sql in attempts:
        with pytest.raises(DatabaseError, match=refused), transaction.atomic():
            fetch(sql)
    assert fetch("SELECT current_user")[0][0] == app_role
    assert fetch("SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user")[0][0] is False
    fetch("SELECT set_config('app.rls_bypass', 'on', true)")
    assert fetch("SELECT count(*) FROM accounts_apikey")[0][0] == 0
    fetch("RESET SESSION AUTHORIZATION")


def test_orgless_audit_events_are_appended_and_read_but_not_changed_by_the_application_role(roles, two_orgs):
    from core.audit import Actor, audit_record
    from core.models import AuditEvent

    app_role, _ = roles
    org_a, org_b = two_orgs
    with tenant_context(org_b):
        theirs = audit_record(actor=Actor.system("rls-test"), action="b.event", organization=org_b)
    fetch(f"SET LOCAL ROLE {app_role}")
    # INSERT ... RETURNING needs the new row to be readable too, so org-less rows are (decision 025).
    event = audit_record(actor=Actor.system("rls-test"), action="account.created")  # no organisation
    assert fetch("SELECT count(*) FROM security_auditevent WHERE id = %s", [event.pk])[0][0] == 1
    assert fetch("SELECT count(*) FROM security_auditevent WHERE id = %s", [theirs.pk])[0][0] == 0
    # No UPDATE or DELETE policy covers org-less rows: the application role cannot rewrite them.
    assert fetch("UPDATE security_auditevent SET action = 'x' WHERE id = %s RETURNING id", [event.pk]) == []
    assert fetch("DELETE FROM security_auditevent WHERE id = %s RETURNING id", [event.pk]) == []
    fetch("SELECT set_config(%s, %s, true)", [RLS_SETTING, str(org_a.pk)])
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        audit_record(actor=Actor.system("rls-test"), action="forged", organization=org_b)
    fetch("RESET ROLE")
    assert AuditEvent.unscoped_objects.get(pk=event.pk).action == "account.created"


# --- End to end: the application role on the default connection, the system role on its own ------------
SYSTEM_ALIAS = "rls_system"


class ProductionRoles:
    """The default connection becomes the application role; a second alias connects as the system role.

    Both are real connections of this process (``assume_role``: SET ROLE at connect), so the code under
    test runs as it does in production: tenant work bound by row-level security, the allow-listed
    cross-tenant reads on a connection of their own. Data is committed (transactional test) so the
    second connection sees it.
    """

    def __init__(self, settings):
        self.settings = settings
        self.default = connections["default"]
        self.saved_options = dict(self.default.settings_dict.get("OPTIONS", {}))

    def __enter__(self):
        with self.default.cursor() as cursor:
            for role, attributes in ((PROBE_ROLE, "NOBYPASSRLS"), (SYSTEM_PROBE_ROLE, "BYPASSRLS")):
                ensure_probe_role(cursor, role, attributes)
                cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
                cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
                cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        system = copy.deepcopy(self.default.settings_dict)
        system["OPTIONS"] = {**self.saved_options, "assume_role": SYSTEM_PROBE_ROLE}
        system["ATOMIC_REQUESTS"] = False
        # Held by the handler but not in its settings: Django's test case allows such a connection.
        wrapper = load_backend(system["ENGINE"]).DatabaseWrapper(system, SYSTEM_ALIAS)
        setattr(connections._connections, SYSTEM_ALIAS, wrapper)
        self._reconnect_default({**self.saved_options, "assume_role": PROBE_ROLE})
        self.system_configured(True)
        return self

    def system_configured(self, configured: bool) -> None:
        """True: SYSTEM_DATABASE_URL set. False: single-role, cross-tenant reads on the application role."""
        self.settings.TENANCY_SYSTEM_DATABASE = SYSTEM_ALIAS if configured else "default"

    def _reconnect_default(self, options) -> None:
        self.default.close()
        self.default.settings_dict["OPTIONS"] = options

    def __exit__(self, *exc):
        connections[SYSTEM_ALIAS].close()
        delattr(connections._connections, SYSTEM_ALIAS)
        self._reconnect_default(self.saved_options)  # the owner again, to flush after the test


def current_role(alias="default"):
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


def _reencrypt(label: str) -> str:
    out = io.StringIO()
    call_command("reencrypt_fields", "--model", label, stdout=out)
    return out.getvalue()


def _invitation_token(org) -> str:
    from django.core import mail

    from accounts.invitations import invitation_create
    from accounts.tests.api_support import owner_of

    invitation_create(organization=org, email="joiner@example.com", role="viewer", actor=owner_of(org))
    return re.search(r"/accounts/invitations/([^/\s]+)/", mail.outbox[-1].body).group(1)


@pytest.mark.django_db(transaction=True)
def test_pre_tenant_reads_work_as_the_system_role_and_find_nothing_without_it(settings):
    from accounts.invitations import InvitationError, invitation_accept, invitation_from_token
    from accounts.tests.api_support import make_api_key
    from accounts.tests.factories import UserFactory
    from core.api.idempotency import purge_expired
    from core.audit import verify_chain
    from core.models import AuditEvent, IdempotencyRecord
    from licensing.tasks import _linked_org_ids

    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    _key, plaintext = make_api_key(org_a)
    token = _invitation_token(org_b)
    _invitation_token(org_a)
    for org in (org_a, org_b):
        with tenant_context(org):
            MicrosoftTenant.objects.update_or_create(
                organization=org,
                defaults={
                    "partner_customer_id": str(uuid.uuid4()),
                    "relationship_status": MicrosoftTenant.RelationshipStatus.ACTIVE,
                },
            )
    joiner = UserFactory(email="joiner@example.com")
    for org in (org_a, org_b):
        with tenant_context(org):
            IdempotencyRecord.objects.create(
                organization=org,
                caller="rls",
                key=f"k-{org.pk}",
                fingerprint="f",
                expires_at=timezone.now() - timedelta(hours=1),
            )
    events = AuditEvent.unscoped_objects.count()
    assert events >= 2

    with ProductionRoles(settings) as roles:
        assert current_role() == PROBE_ROLE and current_role(SYSTEM_ALIAS) == SYSTEM_PROBE_ROLE

        # Single-role: the application role alone finds nothing before a tenant is known. No bypass.
        roles.system_configured(False)
        assert key_client(plaintext).get("/api/v1/organization/").status_code == 401
        with pytest.raises(InvitationError, match="not valid"):
            invitation_from_token(token)
        assert purge_expired() == 0

        # With the system role: the API key decides the tenant, and the request then runs as the application role.
        roles.system_configured(True)
        response = key_client(plaintext).get("/api/v1/organization/")
        assert response.status_code == 200, response.content
        assert invitation_from_token(token).organization_id == org_b.pk
        # Found as the system role, then locked and written inside the tenant as the application role.
        membership = invitation_accept(token=token, user=joiner)
        assert membership.organization_id == org_b.pk and membership._state.db == "default"
        assert [str(p) for p in verify_chain() if "checkpoint" not in str(p)] == []
        assert purge_expired() == 2  # every organisation's expired records, deleted as the system role
        assert set(_linked_org_ids()) == {org_a.pk, org_b.pk}  # a periodic fan-out reads every organisation
        # Key rotation re-encrypts every organisation's invitations (B's, and A's below).
        assert "in 2 row(s)" in _reencrypt("accounts.Invitation")
        roles.system_configured(False)
        assert "in 0 row(s)" in _reencrypt("accounts.Invitation")  # the application role alone: nothing
        assert _linked_org_ids() == []

        # A sweep inside a tenant: the system connection reads, the inner tenant writes as the application
        # role, and the outer tenant's scope on the default connection is still in force afterwards.
        roles.system_configured(True)
        invitations_of = "SELECT organization_id FROM accounts_invitation"
        with tenant_context(org_a):
            assert fetch(invitations_of) == [(org_a.pk,)]
            with unscoped_no_tenant():
                assert Invitation.unscoped_objects.count() == 2  # A's and B's, as the system role
                with tenant_context(org_b):
                    assert fetch(invitations_of) == [(org_b.pk,)]
            assert fetch(invitations_of) == [(org_a.pk,)]  # A's scope, under RLS, as before
        assert current_role() == PROBE_ROLE

    assert AuditEvent.unscoped_objects.filter(action="invitation.accepted", organization=org_b).exists()
    assert not IdempotencyRecord.unscoped_objects.exists()
    assert AuditEvent.unscoped_objects.count() > events


@pytest.mark.django_db(transaction=True)
def test_the_billing_run_bills_a_batch_of_organisations_under_rls_once(settings, monkeypatch):
    from datetime import UTC, date, datetime
    from decimal import Decimal

    from billing.models import Invoice
    from billing.services import invoices as invoice_services
    from core.audit import verify_chain
    from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory

    start = datetime(2026, 1, 15, 10, tzinfo=UTC)
    orgs = [OrganizationFactory() for _ in range(3)]
    for org in orgs:
        sub = SubscriptionFactory(
            organization=org,
            billing_cycle="monthly",
            term_duration="P1Y",
            quantity=5,
            unit_price=Decimal("10.00"),
            start_date=start,
        )
        SeatBatchFactory(subscription=sub, quantity=5, added_at=start)
    monkeypatch.setattr(invoice_services, "RUN_BATCH", 2)

    def billing_run():
        return invoice_services.billing_run(month=date(2026, 1, 1), now=datetime(2026, 2, 1, 2, tzinfo=UTC))

    with ProductionRoles(settings) as roles:
        # Batches of two organisations, each scoped to its two under row-level security.
        assert len(billing_run().documents) == 3
        # Without the system role the run cannot see what is billed; the keys still bill nothing twice.
        roles.system_configured(False)
        assert billing_run().documents == []
        roles.system_configured(True)
        assert billing_run().documents == []
        assert [str(p) for p in verify_chain() if "checkpoint" not in str(p)] == []
    assert sorted(Invoice.unscoped_objects.values_list("organization_id", flat=True)) == sorted(o.pk for o in orgs)


# --- Per person: sign-in attempts and login monitoring's findings (docs/decisions/032) -------------------


def test_the_per_person_policy_covers_the_tables_the_code_treats_as_person_scoped(db):
    first = importlib.import_module("portal.migrations.0006_rls_per_person")
    second = importlib.import_module("portal.migrations.0007_rls_sessions_devices_passkeys_opt_outs")
    migrated = {*first.PERSON_SCOPED, *second.PERSON_SCOPED, *second.PERSON_SCOPED_THROUGH}
    assert migrated == set(PERSON_SCOPED_TABLES) == tables_with_policy("person_isolation")
    assert second.PERSON_SCOPED_THROUGH == PERSON_SCOPED_THROUGH
    assert set(second.APPEND_ONLY) == set(APPEND_ONLY_TABLES) == tables_with_policy("append_only")


def _signed_in_twice(person, at):
    from accounts.models import SignInEvent
    from security.models import LoginSignal

    event = SignInEvent.objects.create(occurred_at=at, user=person, succeeded=True, factor="password")
    LoginSignal.objects.create(
        occurred_at=at, user=person, sign_in_event=event, kind="new_device", risk=1, response="notify"
    )
    return event


def test_the_application_role_sees_zero_rows_of_another_person(roles):
    from accounts.models import SignInEvent
    from accounts.tests.factories import UserFactory

    app_role, _ = roles
    alice, bob = UserFactory(), UserFactory()
    at = timezone.now()
    for person in (alice, bob):
        _signed_in_twice(person, at)
    SignInEvent.objects.create(occurred_at=at, user=None, email_index="e" * 64, succeeded=False, factor="password")
    fetch(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app_role}")
    fetch(f"SET LOCAL ROLE {app_role}")
    for table in ("security_signinevent", "security_loginsignal"):
        with person_context(alice):
            assert {row[0] for row in fetch(f"SELECT DISTINCT user_id FROM {table} WHERE user_id IS NOT NULL")} == {
                alice.pk
            }, table
            assert fetch(f"SELECT count(*) FROM {table} WHERE user_id = %s", [bob.pk])[0][0] == 0
            # A tenant in scope, or the old bypass, widens nothing.
            fetch("SELECT set_config(%s, %s, true)", [RLS_SETTING, str(uuid.uuid4())])
            fetch("SELECT set_config('app.rls_bypass', 'on', true)")
            assert fetch(f"SELECT count(*) FROM {table} WHERE user_id = %s", [bob.pk])[0][0] == 0
        assert fetch(f"SELECT count(*) FROM {table} WHERE user_id IS NOT NULL")[0][0] == 0  # nobody in scope
    with person_context(alice):
        # Bob's rows cannot be changed or deleted, nor one written in his name.
        change = "UPDATE security_signinevent SET succeeded = false WHERE user_id = %s RETURNING id"
        assert fetch(change, [bob.pk]) == []
        assert fetch("DELETE FROM security_loginsignal WHERE user_id = %s RETURNING id", [bob.pk]) == []
        insert = (
            "INSERT INTO security_signinevent (occurred_at, user_id, email_index, user_agent, device_id, succeeded, "
            "factor, failure_reason) VALUES (now(), %s, '', '', '', false, 'password', '') RETURNING id"
        )
        assert fetch(insert, [alice.pk])
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            fetch(insert, [bob.pk])
        # An attempt of no person may be appended (and read back), but not rewritten.
        assert fetch(insert, [None])
        assert fetch("UPDATE security_signinevent SET succeeded = true WHERE user_id IS NULL RETURNING id") == []
    fetch("RESET ROLE")
    assert SignInEvent.objects.filter(user=bob, succeeded=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_signing_in_and_the_activity_page_work_as_the_application_role(settings):
    from django.test import Client
    from django.urls import reverse

    from accounts.models import SignInEvent
    from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
    from accounts.tests.helpers import verified_client
    from security.models import LoginSignal

    alice, bob = UserFactory(), UserFactory()
    theirs = _signed_in_twice(bob, timezone.now() - timedelta(hours=1))
    login = reverse("accounts:login")
    with ProductionRoles(settings):
        assert current_role() == PROBE_ROLE
        client = Client()
        # Wrong passwords for both from one address: each attempt is written in its own person's scope,
        # and the source's failures across accounts are read as the system role (spraying).
        for person in (alice, bob, alice):
            response = client.post(login, {"username": person.email, "password": "wrong!"}, REMOTE_ADDR="203.0.113.9")
            assert response.status_code == 400
        response = client.post(login, {"username": "nobody@example.org", "password": "x"}, REMOTE_ADDR="203.0.113.9")
        assert response.status_code == 400
        credentials = {"username": alice.email, "password": DEFAULT_PASSWORD}
        response = client.post(login, credentials, REMOTE_ADDR="203.0.113.9")
        assert response.status_code == 302  # on to the second factor
        page = verified_client(Client(), alice).get(reverse("accounts:activity"))
        assert page.status_code == 200
        shown = page.context["events"]
        assert shown and {event.user_id for event in shown} == {alice.pk}
        with person_context(alice):  # even without the selector's filter, Bob's rows stay out of reach
            assert not SignInEvent.objects.filter(user=bob).exists()
            assert not LoginSignal.objects.filter(sign_in_event=theirs).exists()
    assert SignInEvent.objects.filter(user=alice, succeeded=False).count() == 2
    assert SignInEvent.objects.filter(user=alice, succeeded=True, factor="password").count() == 1
    assert SignInEvent.objects.filter(user=bob, succeeded=False).count() == 1
    assert SignInEvent.objects.filter(user__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_security_responder_sees_the_findings_of_their_grants_people_as_the_application_role(settings):
    # The queue opens the person context of the granted organisations' members, read in those organisations'
    # own tenant context: memberships have row-level security (decision 044).
    from django.test import Client
    from django.urls import reverse

    from accounts.models import StaffRole
    from accounts.tests.factories import MembershipFactory, StaffGrantFactory, UserFactory
    from accounts.tests.helpers import verified_client

    member, outsider = MembershipFactory(), MembershipFactory()
    at = timezone.now() - timedelta(hours=1)
    ours, theirs = _signed_in_twice(member.user, at), _signed_in_twice(outsider.user, at)
    responder = UserFactory(is_staff=True, is_superuser=True)
    StaffGrantFactory(organization=member.organization, staff=responder, roles=[StaffRole.SECURITY_RESPONDER])
    with ProductionRoles(settings):
        page = verified_client(Client(), responder).get(reverse("admin:security_loginsignal_changelist"))
        assert page.status_code == 200
        shown = {signal.sign_in_event_id for signal in page.context["cl"].result_list}
    assert shown == {ours.pk} and theirs.pk not in shown


# --- Per person: tracked sessions, second-factor devices, passkeys; browsers' opt-outs (decision 035) ----

OWN_TABLES = (
    "accounts_usersession",
    "accounts_totpdevice",
    "accounts_recoverycodedevice",
    "django_otp_webauthn_webauthncredential",
    "django_otp_webauthn_webauthnuserhandle",
)


def _sessions_devices_and_passkeys(person):
    """One row of each person-scoped table of decision 035, written as the owner."""
    import hashlib
    import secrets

    from django_otp_webauthn.models import WebAuthnAttestation, WebAuthnCredential, WebAuthnUserHandle

    from accounts.models import UserSession
    from accounts.tests.factories import RecoveryCodeDeviceFactory, TOTPDeviceFactory

    key = secrets.token_hex(16)
    UserSession.objects.create(user=person, session_key=key, session_key_hash=hashlib.sha256(key.encode()).hexdigest())
    TOTPDeviceFactory(user=person)
    RecoveryCodeDeviceFactory(user=person)
    credential_id = secrets.token_bytes(16)
    credential = WebAuthnCredential.objects.create(
        user=person, name="Passkey", credential_id=credential_id, public_key=b"key", aaguid="",
        credential_id_sha256=hashlib.sha256(credential_id).hexdigest(),
    )
    WebAuthnAttestation.objects.create(credential=credential, fmt="none", data=b"", client_data_json=b"{}")
    WebAuthnUserHandle.objects.create(user=person, handle_hex=secrets.token_hex(64))
    return credential


def test_sessions_devices_and_passkeys_of_another_person_are_out_of_reach(roles):
    from accounts.models import TOTPDevice
    from accounts.tests.factories import UserFactory

    app_role, _ = roles
    alice, bob = UserFactory(), UserFactory()
    theirs = _sessions_devices_and_passkeys(bob)
    _sessions_devices_and_passkeys(alice)
    fetch(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app_role}")
    fetch(f"SET LOCAL ROLE {app_role}")
    attestations = "SELECT credential_id FROM django_otp_webauthn_webauthnattestation"
    for table in OWN_TABLES:
        assert fetch(f"SELECT count(*) FROM {table}")[0][0] == 0, table  # nobody in scope: nothing
        with person_context(alice):
            assert {row[0] for row in fetch(f"SELECT DISTINCT user_id FROM {table}")} == {alice.pk}, table
            # A tenant in scope, or the old bypass, widens nothing; Bob's rows cannot be changed or deleted.
            fetch("SELECT set_config(%s, %s, true)", [RLS_SETTING, str(uuid.uuid4())])
            fetch("SELECT set_config('app.rls_bypass', 'on', true)")
            assert fetch(f"SELECT count(*) FROM {table} WHERE user_id = %s", [bob.pk])[0][0] == 0, table
            assert fetch(f"DELETE FROM {table} WHERE user_id = %s RETURNING user_id", [bob.pk]) == [], table
    assert fetch(attestations) == []
    with person_context(alice):
        assert len(fetch(attestations)) == 1
        assert fetch(attestations + " WHERE credential_id = %s", [theirs.pk]) == []
        # No device may be written in Bob's name, nor one of his moved to Alice.
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            TOTPDevice.objects.create(user=bob, name="planted", key="00" * 20, confirmed=True)
        move = "UPDATE accounts_totpdevice SET user_id = %s WHERE user_id = %s RETURNING id"
        assert fetch(move, [alice.pk, bob.pk]) == []
    with person_context(bob):  # Bob himself sees his own
        assert fetch(attestations) == [(theirs.pk,)]
    fetch("RESET ROLE")
    for table in OWN_TABLES:
        assert fetch(f"SELECT count(*) FROM {table} WHERE user_id = %s", [bob.pk])[0][0] == 1, table


def test_a_browsers_opt_out_may_be_appended_by_the_application_role_and_never_read_back(roles):
    from accounts.tests.factories import UserFactory
    from privacy.models import BrowserOptOut, OptOutMethod
    from privacy.services.optouts import opt_out_browser_record

    app_role, _ = roles
    earlier = BrowserOptOut.objects.create(browser_id="a" * 32, method=OptOutMethod.GPC)
    person = UserFactory()
    fetch(f"SET LOCAL ROLE {app_role}")
    record = opt_out_browser_record(method=OptOutMethod.GPC)  # a plain INSERT: nothing to read back
    assert fetch("SELECT count(*) FROM privacy_browseroptout")[0][0] == 0
    with person_context(person):  # a person's context shows none either: no person owns them
        assert fetch("SELECT count(*) FROM privacy_browseroptout")[0][0] == 0
    assert fetch("UPDATE privacy_browseroptout SET method = 'form' RETURNING id") == []
    assert fetch("DELETE FROM privacy_browseroptout RETURNING id") == []
    fetch("RESET ROLE")
    assert set(BrowserOptOut.objects.values_list("pk", flat=True)) == {earlier.pk, record.pk}


def _tracked(person) -> int:
    from accounts.models import UserSession

    return UserSession.objects.filter(user=person).count()


@pytest.mark.django_db(transaction=True)
def test_second_factors_sessions_passkeys_and_gpc_work_as_the_application_role(settings):
    import json

    from django.test import Client
    from django.urls import reverse
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp_webauthn.models import WebAuthnCredential

    from accounts import mfa
    from accounts.tests.factories import DEFAULT_PASSWORD, TOTPDeviceFactory, UserFactory
    from accounts.tests.helpers import totp_code
    from accounts.tests.passkey_support import SoftwarePasskey
    from privacy.models import BrowserOptOut

    def post_json(client, name, body=None):
        return client.post(reverse(name), data=json.dumps(body or {}), content_type="application/json")

    def password_step(client, person=None):
        person = person or alice
        response = client.post(login, {"username": person.email, "password": DEFAULT_PASSWORD})
        assert response.status_code == 302, response.content
        return client

    alice, bob = UserFactory(), UserFactory()
    device = TOTPDeviceFactory(user=alice)
    _sessions_devices_and_passkeys(bob)
    login, sessions_url = reverse("accounts:login"), reverse("accounts:sessions")
    passkey = SoftwarePasskey(rp_id=settings.OTP_WEBAUTHN_RP_ID, origin=settings.OTP_WEBAUTHN_ALLOWED_ORIGINS[0])
    with ProductionRoles(settings) as roles:
        assert current_role() == PROBE_ROLE
        # Password, then the authenticator's code: tracked and verified in Alice's own context.
        first = password_step(Client())
        assert first.post(reverse("accounts:mfa_verify"), {"code": totp_code(device)}).status_code == 302
        # Every later request finds the session's device as the system role (django-otp's middleware).
        page = first.get(sessions_url)
        assert page.status_code == 200
        assert [tracked.user_id for tracked in page.context["sessions"]] == [alice.pk]
        devices = first.get(reverse("accounts:mfa_devices"))
        assert [d.pk for d in devices.context["devices"]] == [device.pk] and devices.context["passkeys"] == []

        # Recovery codes, made on the page; one of them verifies a second browser.
        codes = first.post(reverse("accounts:recovery_codes")).context["codes"]
        second = password_step(Client())
        assert second.post(reverse("accounts:mfa_verify"), {"code": codes[0]}).status_code == 302
        assert second.get(sessions_url).status_code == 200
        assert mfa.mfa_verify(user=alice, token=codes[0]).failure == "bad_code"  # used once

        # A passkey: added behind the recent check, then it verifies a third browser.
        options = post_json(first, "accounts:passkey_register_begin")
        assert options.status_code == 200, options.content
        assert post_json(first, "accounts:passkey_register_complete", passkey.create(options.json())).status_code == 200
        third = password_step(Client())
        options = post_json(third, "accounts:passkey_verify_begin")
        assert options.status_code == 200, options.content
        done = post_json(third, "accounts:passkey_verify_complete", passkey.get(options.json()))
        assert done.status_code == 200, done.content
        assert third.session[DEVICE_ID_SESSION_KEY].startswith("django_otp_webauthn.")
        assert third.get(sessions_url).status_code == 200
        with person_context(alice):
            assert WebAuthnCredential.objects.filter(user=alice).count() == 1
        assert not WebAuthnCredential.objects.exists()  # outside her context the application role sees none

        # Sign out of the others: the second browser's tracked session and Django session go.
        assert len(first.get(sessions_url).context["sessions"]) == 3
        first.post(sessions_url, {"scope": "others"})
        assert second.get(sessions_url).status_code == 302
        # A password change signs the remaining other browser out and keeps this one tracked.
        fourth = password_step(Client())
        fourth.post(reverse("accounts:mfa_verify"), {"code": codes[1]})
        changed = first.post(reverse("accounts:password_change"), {
            "old_password": DEFAULT_PASSWORD, "new_password1": "a new long passphrase 7",
            "new_password2": "a new long passphrase 7"})
        assert changed.status_code == 302, changed.content
        assert fourth.get(sessions_url).status_code == 302
        assert [s.user_id for s in first.get(sessions_url).context["sessions"]] == [alice.pk]

        # Global Privacy Control: an anonymous browser's opt-out is appended, then honoured by its cookie.
        visitor = Client()
        assert visitor.get(login, HTTP_SEC_GPC="1").status_code == 200
        assert visitor.get(login).context["request"].privacy_opt_out is not None
        # Without the system role neither the session's user nor its device is found: signed out (fail closed,
        # decision 043; before users had row-level security, the user was found and sent to verify again).
        roles.system_configured(False)
        assert first.get(sessions_url)["Location"].startswith(reverse("accounts:login"))
        roles.system_configured(True)
        first.post(reverse("accounts:logout"))
    assert _tracked(alice) == 0 and _tracked(bob) == 1  # signed out: her last tracked session went too
    assert BrowserOptOut.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_erasure_plan_counts_and_retention_purges_these_rows_as_the_application_role(settings):
    from accounts.tests.factories import UserFactory
    from privacy.models import BrowserOptOut, OptOutMethod
    from privacy.services.erasure import erasure_plan
    from privacy.services.retention import LegalHoldsUnreadable, retention_purge

    alice, bob = UserFactory(), UserFactory()
    for person in (alice, bob):
        _sessions_devices_and_passkeys(person)
    expired = BrowserOptOut.objects.create(
        browser_id="a" * 32, method=OptOutMethod.GPC, recorded_at=timezone.now() - timedelta(days=800)
    )
    young = BrowserOptOut.objects.create(browser_id="b" * 32, method=OptOutMethod.GPC)
    with ProductionRoles(settings) as roles:
        # The subject's own rows, counted in their context: one of each, none of Bob's.
        rows = {item.get("model"): item["rows"] for item in erasure_plan(alice)}
        for label in ("accounts.usersession", "accounts.totpdevice", "accounts.recoverycodedevice",
                      "django_otp_webauthn.webauthncredential", "django_otp_webauthn.webauthnattestation",
                      "django_otp_webauthn.webauthnuserhandle"):
            assert rows.get(label) == 1, (label, rows)
        # Browsers' opt-outs are purged as the system role. The application role alone cannot read the legal
        # holds (decision 045), so it purges nothing at all rather than purge what a hold might cover.
        roles.system_configured(False)
        with pytest.raises(LegalHoldsUnreadable):
            retention_purge()
        roles.system_configured(True)
        assert retention_purge().counts.get("privacy.browseroptout") == 1
    assert list(BrowserOptOut.objects.values_list("pk", flat=True)) == [young.pk]
    assert not BrowserOptOut.objects.filter(pk=expired.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_staff_sign_in_to_the_admin_works_as_the_application_role(settings):
    from django.test import Client

    from accounts.models import UserSession
    from accounts.tests.factories import DEFAULT_PASSWORD, TOTPDeviceFactory, UserFactory
    from accounts.tests.helpers import totp_code

    staff = UserFactory(is_staff=True, is_superuser=True)
    device = TOTPDeviceFactory(user=staff)
    with ProductionRoles(settings):
        client = Client()
        response = client.post("/admin/login/", {"username": staff.email, "password": DEFAULT_PASSWORD,
                                                 "otp_token": totp_code(device), "next": "/admin/"})
        assert response.status_code == 302 and response["Location"] == "/admin/", response.content
        assert client.get("/admin/").status_code == 200  # the session's device found as the system role
        with person_context(staff):
            assert UserSession.objects.filter(user=staff).count() == 1
    assert UserSession.objects.get(user=staff).session_key == client.session.session_key


@pytest.mark.django_db(transaction=True)
def test_a_directory_page_is_matched_as_the_application_role_within_its_own_organisation(settings):
    """The sync's page lookup (one probe of the unique index per listed object id, in SQL of its own) runs
    under row-level security: a resync finds the organisation's own users unchanged, and another organisation
    listing the same object ids (the same keyed index) gets users of its own, never a match on the first's."""
    from licensing.models import DirectoryUser
    from licensing.services.directory import directory_user_upsert_from_graph

    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    page = [{"id": str(uuid.uuid4()), "displayName": f"Person {n}", "userPrincipalName": f"p{n}@example.com",
             "accountEnabled": True, "assignedLicenses": []} for n in range(3)]
    with ProductionRoles(settings):
        assert current_role() == PROBE_ROLE
        with tenant_context(org_a):
            assert directory_user_upsert_from_graph(organization=org_a, users=page, skus={})["created"] == 3
        with tenant_context(org_a):
            assert directory_user_upsert_from_graph(organization=org_a, users=page, skus={})["unchanged"] == 3
        with tenant_context(org_b):
            assert directory_user_upsert_from_graph(organization=org_b, users=page, skus={})["created"] == 3
    for org in (org_a, org_b):
        with tenant_context(org):
            assert DirectoryUser.objects.for_org(org).count() == 3
