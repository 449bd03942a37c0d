"""Row-level security on the staff-side tables of reconciliation and service announcements (decision 045).

As raw SQL under the application role: another organisation's rows are unreadable, unchangeable and cannot be
planted. End to end, as the application role with the system role on its own connection (``ProductionRoles``):
Microsoft's import and the matching write as the system role, the admin shows a billing grant's findings,
staff target, re-target and delete an announcement, and a customer sees only the announcements naming it;
without the system role each fails closed.
"""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, date, datetime

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import StaffRole
from accounts.tests.api_support import owner_of
from accounts.tests.factories import OrganizationFactory, StaffGrantFactory, UserFactory
from accounts.tests.helpers import verified_client
from billing.models import MicrosoftLineItem, ReconciliationFinding, ReconciliationRun
from billing.services.reconciliation import ReconciliationError, reconciliation_run
from billing.tests.test_reconciliation import START, billed_subscription, item
from core.audit import Actor
from core.tenancy import RLS_SETTING, tenant_context
from licensing.admin_directory import ServiceAnnouncementForm
from licensing.models import ServiceAnnouncement
from licensing.selectors.directory import announcement_target_ids, announcements
from licensing.services.notifications import announcement_publish
from tests.test_rls import PROBE_ROLE, SYSTEM_ALIAS, ProductionRoles, current_role, fetch, tables_with_policy
from tests.test_rls import roles as probe_roles  # noqa: F401  (a fixture: found under this name)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-level security needs PostgreSQL"),
]

MIGRATION = importlib.import_module("portal.migrations.0010_rls_staff_side")
TABLES = ("billing_microsoftlineitem", "billing_reconciliationfinding", "licensing_serviceannouncement_organizations")
UNKNOWN_SUBSCRIPTION = "ffffffff-0000-0000-0000-000000000000"


def test_the_migration_puts_the_policies_it_names_on_these_tables(db):
    migrated = {*MIGRATION.TENANT_SCOPED, *MIGRATION.TENANT_SCOPED_ORGLESS_READS}
    assert migrated == set(TABLES)
    assert migrated <= tables_with_policy()
    # Findings of no organisation may be read by the application role; nothing of no organisation may be written.
    assert migrated & tables_with_policy("orgless_read") == set(MIGRATION.TENANT_SCOPED_ORGLESS_READS)
    assert not migrated & tables_with_policy("orgless_insert")


def _line(run, organization):
    now = timezone.now()
    return MicrosoftLineItem(run=run, organization=organization, reference_id=uuid.uuid4().hex, ms_subscription_id="s",
                             charge_type="new", charge_start=now, charge_end=now, quantity=1, unit_price=1,
                             subtotal=1, currency="USD")


def _finding(run, organization):
    return ReconciliationFinding(run=run, organization=organization, kind="leakage", ms_subscription_id="s",
                                 charge_day=date(2026, 1, 15))


@pytest.mark.usefixtures("probe_roles")  # the application and system roles exist, for this transaction
def test_another_organisations_rows_are_out_of_reach_of_the_application_role():
    app_role = PROBE_ROLE
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    run = ReconciliationRun.objects.create(source="unbilled", started_at=timezone.now())
    for organization in (org_a, org_b, None):
        _line(run, organization).save()
        _finding(run, organization).save()
    announcement = ServiceAnnouncement.objects.create(title="Targeted", body="b", all_organizations=False)
    announcement.organizations.set([org_a, org_b])
    fetch(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app_role}")
    fetch(f"SET LOCAL ROLE {app_role}")
    for table in TABLES:  # nobody in scope (or the old bypass): no organisation's rows
        fetch("SELECT set_config('app.rls_bypass', 'on', true)")
        assert fetch(f"SELECT count(*) FROM {table} WHERE organization_id IS NOT NULL")[0][0] == 0, table
    fetch("SELECT set_config(%s, %s, true)", [RLS_SETTING, str(org_a.pk)])
    for table in TABLES:
        assert fetch(f"SELECT DISTINCT organization_id FROM {table} WHERE organization_id IS NOT NULL") == [
            (org_a.pk,)
        ], table
        move = f"UPDATE {table} SET organization_id = %s WHERE organization_id = %s RETURNING organization_id"
        assert fetch(move, [org_a.pk, org_b.pk]) == [], table
        assert fetch(f"DELETE FROM {table} WHERE organization_id = %s RETURNING organization_id", [org_b.pk]) == []
        # Nor can one of A's own rows be handed to B.
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            fetch(move, [org_b.pk, org_a.pk])
    # A finding of no organisation is read (the admin lists it), never changed; a line of none is not even read.
    assert fetch("SELECT count(*) FROM billing_reconciliationfinding WHERE organization_id IS NULL")[0][0] == 1
    assert fetch("SELECT count(*) FROM billing_microsoftlineitem WHERE organization_id IS NULL")[0][0] == 0
    assert fetch("UPDATE billing_reconciliationfinding SET note = 'x' WHERE organization_id IS NULL RETURNING id") == []
    assert fetch("DELETE FROM billing_reconciliationfinding WHERE organization_id IS NULL RETURNING id") == []
    # Planting: A's own rows may be written in A's context; B's, or rows of no organisation, may not.
    _line(run, org_a).save()
    plants = [
        lambda: _line(run, org_b).save(),
        lambda: _line(run, None).save(),
        lambda: _finding(run, org_b).save(),
        lambda: _finding(run, None).save(),
        lambda: ServiceAnnouncement.objects.create(title="Planted", body="b").organizations.add(org_b),
    ]
    for plant in plants:
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            plant()
    fetch("RESET ROLE")
    assert MicrosoftLineItem.objects.filter(organization=org_b).count() == 1
    assert ReconciliationFinding.objects.filter(organization=org_b).count() == 1
    assert ReconciliationFinding.objects.filter(organization__isnull=True, note="").count() == 1
    assert set(announcement.organizations.values_list("pk", flat=True)) == {org_a.pk, org_b.pk}


@pytest.mark.django_db(transaction=True)
def test_reconciliation_writes_as_the_system_role_and_the_admin_shows_a_grants_findings(settings):
    granted, other = OrganizationFactory(), OrganizationFactory()
    short, theirs = billed_subscription(granted, seats=10), billed_subscription(other, seats=10)
    items = [
        item(short.ms_subscription_id, START, 12, "25.00"),  # Microsoft counts 12 seats, we billed 10
        item(theirs.ms_subscription_id, START, 11, "25.00"),
        item(UNKNOWN_SUBSCRIPTION, START, 1, "9.00"),  # nobody's subscription: a finding of no organisation
    ]
    staff = UserFactory(is_staff=True, is_superuser=True)
    StaffGrantFactory(organization=granted, staff=staff, roles=[StaffRole.SUPPORT_READER])
    now = datetime(2026, 3, 10, tzinfo=UTC)
    with ProductionRoles(settings) as production:
        assert current_role() == PROBE_ROLE
        run = reconciliation_run(actor=Actor.system("rls-test"), items=iter(items), now=now)
        # Created and saved on the system connection: the router names the alias, whatever the instance says.
        assert run._state.db == SYSTEM_ALIAS and run.status == ReconciliationRun.Status.DONE and run.items == 3
        assert run.summary["at_risk_per_customer"].keys() == {str(granted.pk), str(other.pk), "unknown"}

        # The application role: a customer's rows in its context, plus the findings of no organisation.
        with tenant_context(granted):
            assert MicrosoftLineItem.objects.filter(run_id=run.pk).count() == 1
            shown = set(ReconciliationFinding.objects.filter(run_id=run.pk).values_list("organization_id", flat=True))
            assert shown == {granted.pk, None}
        assert not MicrosoftLineItem.objects.filter(run_id=run.pk).exists()

        # The staff admin's run page: the grant's customer and the unmatched subscription, not the other customer.
        client = verified_client(Client(), staff)
        page = client.get(reverse("admin:billing_reconciliationrun_change", args=[run.pk]))
        assert page.status_code == 200
        [inline] = page.context["inline_admin_formsets"]
        listed = {form.instance.organization_id for form in inline.formset.forms}
        assert listed == {granted.pk, None}
        assert UNKNOWN_SUBSCRIPTION in page.content.decode() and theirs.ms_subscription_id not in page.content.decode()

        # Without the system role the lines are refused: the run is marked failed, nothing else is written.
        production.system_configured(False)
        with pytest.raises(ReconciliationError):
            reconciliation_run(actor=Actor.system("rls-test"), items=iter(items), now=now)
        production.system_configured(True)
    failed = ReconciliationRun.objects.exclude(pk=run.pk).get()
    assert failed.status == ReconciliationRun.Status.FAILED and "SYSTEM_DATABASE_URL" in failed.error
    assert not MicrosoftLineItem.objects.filter(run=failed).exists()
    assert not ReconciliationFinding.objects.filter(run=failed).exists()
    assert MicrosoftLineItem.objects.filter(run=run).count() == 3


def _announcement_form(title, organizations, **extra):
    return {"title": title, "body": "Exchange is degraded.", "severity": "warning",
            "organizations": [str(org.pk) for org in organizations], "ends_at_0": "", "ends_at_1": "", **extra}


@pytest.mark.django_db(transaction=True)
def test_staff_target_an_announcement_and_only_the_organisations_named_see_it(settings):
    named, moved_to, bystander = OrganizationFactory(), OrganizationFactory(), OrganizationFactory()
    staff = UserFactory(is_staff=True, is_superuser=True)
    add_url = reverse("admin:licensing_serviceannouncement_add")
    with ProductionRoles(settings) as production:
        client = verified_client(Client(), staff)
        response = client.post(add_url, _announcement_form("Degraded", [named]))
        assert response.status_code == 302, response.content
        announcement = ServiceAnnouncement.objects.get(title="Degraded")
        assert announcement_target_ids(announcement) == [named.pk]
        change_url = reverse("admin:licensing_serviceannouncement_change", args=[announcement.pk])
        # The change form shows the targets, read as the system role.
        assert client.get(change_url).context["adminform"].form.initial["organizations"] == [named.pk]
        announcement_publish(announcement=announcement, actor=Actor.staff(staff))

        # Each customer's dashboard, as the application role in its context: only the named one sees it.
        for organization, sees in ((named, True), (bystander, False)):
            owner = owner_of(organization)
            page = verified_client(Client(), owner).get(
                reverse("licensing:notifications", kwargs={"org_slug": organization.slug}))
            assert page.status_code == 200
            assert ("Degraded" in page.content.decode()) is sees
        with tenant_context(bystander):  # even joined by hand, the targeting of others is not there
            assert not ServiceAnnouncement.organizations.through.objects.exists()

        # Re-targeted: the old row removed and the new one added in their organisations' context.
        response = client.post(change_url, _announcement_form("Degraded", [moved_to]))
        assert response.status_code == 302, response.content
        assert announcement_target_ids(announcement) == [moved_to.pk]
        with tenant_context(named):
            assert list(announcements(named)) == []
        with tenant_context(moved_to):
            assert [a.pk for a in announcements(moved_to)] == [announcement.pk]

        # Without the system role the form finds no targets: fail closed. (The admin page itself is then out of
        # reach anyway: the session's second factor is found as the system role, decision 035.)
        production.system_configured(False)
        assert ServiceAnnouncementForm(instance=announcement).initial["organizations"] == []
        production.system_configured(True)

        # Deleted: its targeting rows go first, in their organisations' context, so the commit is not refused.
        delete_url = reverse("admin:licensing_serviceannouncement_delete", args=[announcement.pk])
        assert client.post(delete_url, {"post": "yes"}).status_code == 302
    assert not ServiceAnnouncement.objects.filter(pk=announcement.pk).exists()
    assert not ServiceAnnouncement.organizations.through.objects.exists()
