"""Row-level security on the staff-side tables of reconciliation, service announcements, the disclosure log, legal
holds and opt-outs (decision 045).

As raw SQL under the application role: another organisation's rows are unreadable, unchangeable and cannot be
planted. End to end, as the application role with the system role on its own connection (``ProductionRoles``):
Microsoft's import and the matching write as the system role, the admin shows a billing grant's findings,
staff target, re-target and delete an announcement, a customer sees only the announcements naming it, and the
disclosure log is written and read in each organisation's context (the officer's inventory as the system role), and a
privacy operator sees and places the holds of the organisations and people their grant covers while retention and
erasure read every hold as the system role, and opt-outs are recorded, found on every request and honoured by the
disclosure gate; without the system role each fails closed.
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
from accounts.tests.factories import MembershipFactory, OrganizationFactory, StaffGrantFactory, UserFactory
from accounts.tests.helpers import verified_client
from billing.models import MicrosoftLineItem, ReconciliationFinding, ReconciliationRun
from billing.services.reconciliation import ReconciliationError, reconciliation_run
from billing.tests.test_reconciliation import START, billed_subscription, item
from core.audit import Actor
from core.disclosures import DisclosureRefused, disclosure_record
from core.models import Disclosure
from core.tenancy import RLS_SETTING, person_context, tenant_context, unscoped_no_tenant
from licensing.admin_directory import ServiceAnnouncementForm
from licensing.models import ServiceAnnouncement
from licensing.selectors.directory import announcement_target_ids, announcements
from licensing.services.notifications import announcement_publish
from privacy.access_report import disclosure_section
from privacy.models import LegalHold, OptOut
from privacy.selectors import data_inventory, organization_opted_out, user_opt_out
from privacy.services.recipient_notices import recipient_notices_open
from privacy.services.requests import request_submit_portal
from privacy.services.retention import LegalHoldsUnreadable, held_subjects
from privacy.tests.factories import make_officer
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
    migrated = {*MIGRATION.TENANT_SCOPED, *MIGRATION.TENANT_SCOPED_ORGLESS_READS, *MIGRATION.TENANT_SCOPED_ORGLESS_ROWS,
                *MIGRATION.TENANT_OR_PERSON_SCOPED}
    assert migrated == {*TABLES, "privacy_disclosure", "privacy_legalhold", "privacy_optout"}
    assert migrated <= tables_with_policy()
    assert migrated & tables_with_policy("person_rows") == {"privacy_legalhold", "privacy_optout"}
    # Findings of no organisation may be read by the application role, never written; disclosures of none may be
    # appended and read (as audit events); lines and targets of none, neither.
    orgless = {*MIGRATION.TENANT_SCOPED_ORGLESS_READS, *MIGRATION.TENANT_SCOPED_ORGLESS_ROWS}
    assert migrated & tables_with_policy("orgless_read") == orgless
    assert migrated & tables_with_policy("orgless_insert") == set(MIGRATION.TENANT_SCOPED_ORGLESS_ROWS)


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
    # The customers' owners are created here, as the owner role: the application role cannot plant a user or a
    # membership outside their own contexts (decisions 043 and 044).
    owners = {organization: owner_of(organization) for organization in (named, bystander)}
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
            page = verified_client(Client(), owners[organization]).get(
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


def _disclose(organization, request_id, recipient="microsoft"):
    return disclosure_record(recipient=recipient, organization=organization, categories=["contact"],
                             purpose=Disclosure.Purpose.PROVISIONING, operation="customers.create",
                             ms_request_id=request_id)


@pytest.mark.usefixtures("probe_roles")
def test_another_organisations_disclosures_are_out_of_reach_of_the_application_role():
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    for organization in (org_a, org_b, None):
        _disclose(organization, uuid.uuid4().hex)
    fetch(f"SET LOCAL ROLE {PROBE_ROLE}")
    fetch("SELECT set_config(%s, %s, true)", [RLS_SETTING, str(org_a.pk)])
    # A's own, and the log's rows of no organisation (which name nobody), as audit events.
    assert {row[0] for row in fetch("SELECT organization_id FROM privacy_disclosure")} == {org_a.pk, None}
    assert fetch("UPDATE privacy_disclosure SET operation = 'x' WHERE organization_id = %s RETURNING id",
                 [org_b.pk]) == []
    assert fetch("DELETE FROM privacy_disclosure WHERE organization_id = %s RETURNING id", [org_b.pk]) == []
    assert fetch("UPDATE privacy_disclosure SET operation = 'x' WHERE organization_id IS NULL RETURNING id") == []
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        fetch("UPDATE privacy_disclosure SET organization_id = %s WHERE organization_id = %s", [org_b.pk, org_a.pk])
    planted = Disclosure(recipient="microsoft", organization=org_b, categories=["contact"], purpose="provisioning",
                         operation="planted")
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        planted.save()
    fetch("RESET ROLE")
    assert Disclosure.objects.filter(organization=org_b).exclude(operation="planted").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_disclosure_log_is_written_and_read_in_each_organisations_context(settings):
    settings.PRIVACY_RECIPIENT_CONTACTS = {}
    membership, other = MembershipFactory(), OrganizationFactory()
    mine = membership.organization
    officer = make_officer()
    request = request_submit_portal(user=membership.user, kind="access", region="eu_uk", organization=mine,
                                    recent_mfa=True)
    _disclose(other, "theirs", recipient="regulator")
    with ProductionRoles(settings) as production:
        # Recorded by the Microsoft client outside any tenant context (or inside another's): in its own.
        with tenant_context(other):
            _disclose(mine, "mine-1")
        _disclose(mine, "mine-1")  # a retry: the same row
        _disclose(None, "nobody")
        with tenant_context(mine):
            assert sorted(Disclosure.objects.values_list("request_id", flat=True)) == ["mine-1", "nobody"]

        # The subject's access report lists their organisation's disclosures only.
        section = disclosure_section([mine.pk])
        assert section.count() == 1
        assert [row["operation"] for batch in section.iter_rows() for row in batch] == ["customers.create"]

        # Art. 19 notices go to the recipients of the request's organisation, not another's.
        with transaction.atomic():
            notices = recipient_notices_open(request, [mine.pk])
        assert [notice.recipient for notice in notices] == ["microsoft"]

        # The officer's inventory names every organisation's recipients, read as the system role.
        page = verified_client(Client(), officer).get(reverse("privacy:console_inventory"))
        assert page.status_code == 200
        recipients = {name for category in page.context["categories"] for name in category["recipients"]}
        assert recipients == {"Microsoft", "Regulator"}
        # Without the system role it sees only the rows of no organisation (fails closed).
        production.system_configured(False)
        recipients = {name for category in data_inventory() for name in category["recipients"]}
        assert recipients == {"Microsoft"}
        production.system_configured(True)
    assert Disclosure.objects.filter(organization=mine).count() == 1
    assert Disclosure.objects.filter(organization__isnull=True).count() == 1


def _hold(organization=None, user=None):
    return LegalHold.objects.create(organization=organization, user=user, reason="Litigation 42")


@pytest.mark.usefixtures("probe_roles")
def test_another_organisations_or_persons_legal_holds_are_out_of_reach_of_the_application_role():
    org_a, org_b, alice, bob = OrganizationFactory(), OrganizationFactory(), UserFactory(), UserFactory()
    ours = {_hold(organization=org_a).pk, _hold(user=alice).pk}
    theirs = [_hold(organization=org_b), _hold(user=bob)]
    fetch(f"SET LOCAL ROLE {PROBE_ROLE}")
    assert fetch("SELECT count(*) FROM privacy_legalhold")[0][0] == 0  # nobody in scope
    with tenant_context(org_a), person_context(alice):
        assert {row[0] for row in fetch("SELECT id FROM privacy_legalhold")} == ours
        for hold in theirs:
            assert fetch("UPDATE privacy_legalhold SET released_at = now() WHERE id = %s RETURNING id", [hold.pk]) == []
            assert fetch("DELETE FROM privacy_legalhold WHERE id = %s RETURNING id", [hold.pk]) == []
        for planted in ({"organization": org_b}, {"user": bob}):
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                _hold(**planted)
    fetch("RESET ROLE")
    assert LegalHold.objects.filter(pk__in=[hold.pk for hold in theirs], released_at__isnull=True).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_privacy_operator_works_the_holds_of_their_grant_and_purges_read_every_hold(settings):
    member = MembershipFactory()
    granted, person = member.organization, member.user
    other, stranger = OrganizationFactory(), UserFactory()
    theirs = [_hold(organization=other), _hold(user=stranger)]
    operator = UserFactory(is_staff=True, is_superuser=True)
    StaffGrantFactory(organization=granted, staff=operator, roles=[StaffRole.PRIVACY_OPERATOR])
    changelist = reverse("admin:privacy_legalhold_changelist")
    with ProductionRoles(settings) as production:
        client = verified_client(Client(), operator)
        # Placed through the admin as the application role: one on the organisation, one on its member.
        for placed in ({"organization": str(granted.pk)}, {"user": str(person.pk)}):
            response = client.post(reverse("admin:privacy_legalhold_add"), {**placed, "reason": "Regulator 7"})
            assert response.status_code == 302, response.content
        page = client.get(changelist)
        assert page.status_code == 200
        shown = {hold.pk for hold in page.context["cl"].result_list}
        assert not LegalHold.objects.exists()  # outside any context the application role sees no hold at all
        with unscoped_no_tenant():
            ours = set(LegalHold.objects.exclude(pk__in=[hold.pk for hold in theirs]).values_list("pk", flat=True))
        assert len(ours) == 2 and shown == ours

        # Retention and erasure read every active hold, as the system role.
        held_orgs, held_users = held_subjects()
        assert held_orgs == {granted.pk, other.pk} and {person.pk, stranger.pk} <= held_users

        # Released through the admin's action.
        response = client.post(changelist, {"action": "release", "_selected_action": [str(pk) for pk in ours]})
        assert response.status_code == 302, response.content
        assert held_subjects()[0] == {other.pk}

        # Without the system role the holds cannot be read: purging and erasing refuse (fail closed).
        production.system_configured(False)
        with pytest.raises(LegalHoldsUnreadable):
            held_subjects()
        production.system_configured(True)
    assert not LegalHold.objects.filter(pk__in=ours, released_at__isnull=True).exists()
    assert LegalHold.objects.filter(pk__in=[hold.pk for hold in theirs], released_at__isnull=True).count() == 2


@pytest.mark.usefixtures("probe_roles")
def test_another_organisations_or_persons_opt_outs_are_out_of_reach_of_the_application_role():
    org_a, org_b, alice, bob = OrganizationFactory(), OrganizationFactory(), UserFactory(), UserFactory()
    ours = {OptOut.objects.create(method="form", **holder).pk for holder in ({"organization": org_a}, {"user": alice})}
    theirs = [OptOut.objects.create(method="form", **holder) for holder in ({"organization": org_b}, {"user": bob})]
    fetch(f"SET LOCAL ROLE {PROBE_ROLE}")
    assert fetch("SELECT count(*) FROM privacy_optout")[0][0] == 0  # nobody in scope
    with tenant_context(org_a), person_context(alice):
        assert {row[0] for row in fetch("SELECT id FROM privacy_optout")} == ours
        for record in theirs:
            assert fetch("DELETE FROM privacy_optout WHERE id = %s RETURNING id", [record.pk]) == []
            assert fetch("UPDATE privacy_optout SET method = 'api' WHERE id = %s RETURNING id", [record.pk]) == []
        for planted in ({"organization": org_b}, {"user": bob}):
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                OptOut.objects.create(method="api", **planted)
    fetch("RESET ROLE")
    assert sorted(OptOut.objects.exclude(pk__in=ours).values_list("method", flat=True)) == ["form", "form"]


@pytest.mark.django_db(transaction=True)
def test_opt_outs_are_recorded_found_and_honoured_as_the_application_role(settings):
    member, bystander = MembershipFactory(), MembershipFactory()
    organization, person = member.organization, member.user
    # Created here, as the owner: the application role cannot plant an organisation outside its context (044).
    other = OrganizationFactory()
    marketing = {"recipient": "distributor", "categories": ["contact"], "purpose": Disclosure.Purpose.MARKETING,
                 "operation": "leads.share"}
    with ProductionRoles(settings) as production:
        client = verified_client(Client(), person)
        # The Global Privacy Control signal of a signed-in person: their opt-out and their organisation's.
        assert client.get(reverse("privacy:my_data"), HTTP_SEC_GPC="1").status_code == 200
        with person_context(person):
            assert OptOut.objects.filter(user=person).count() == 1
        with tenant_context(organization):
            assert OptOut.objects.filter(organization=organization).count() == 1
        # Found on the person's next visit from another browser, without the signal or the first one's cookie:
        # the person's own, read as the system role.
        page = verified_client(Client(), person).get(reverse("privacy:my_data"))
        assert page.context["request"].privacy_opt_out.method == "gpc_header"
        assert user_opt_out(person).user_id == person.pk

        # The disclosure gate reads the organisation's and its members' opt-outs.
        with pytest.raises(DisclosureRefused):
            disclosure_record(organization=organization, ms_request_id="m-1", **marketing)
        assert disclosure_record(organization=bystander.organization, ms_request_id="m-2", **marketing)
        # A member's own opt-out alone is enough, though the organisation's row is not there.
        with person_context(bystander.user):
            OptOut.objects.create(user=bystander.user, method="form")
        assert organization_opted_out(bystander.organization)

        # Without the system role: nobody's opt-out is found, so every non-essential disclosure is refused.
        production.system_configured(False)
        assert user_opt_out(person) is None
        assert organization_opted_out(other)
        with pytest.raises(DisclosureRefused):
            disclosure_record(organization=other, ms_request_id="m-3", **marketing)
        production.system_configured(True)
        assert not organization_opted_out(other)
    assert OptOut.objects.filter(user=person, method="gpc_header").exists()
