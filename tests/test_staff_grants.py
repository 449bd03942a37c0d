"""Staff access grants: the services' rules, and the admin scoped by them (docs/decisions/021)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import grants
from accounts.models import Role, StaffGrant, StaffRole
from accounts.tests.factories import MembershipFactory, OrganizationFactory, StaffGrantFactory, UserFactory
from accounts.tests.helpers import verified_client
from billing.models import BillingProfile
from core.models import AuditEvent
from core.tenancy import tenant_context
from licensing.models import ProvisioningOperation

pytestmark = pytest.mark.django_db

# Well before any day this suite runs on: a grant set up around NOW has ended by the real clock.
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _order(org):
    """A licensing row (a provisioning operation) of ``org``."""
    with tenant_context(org):
        return ProvisioningOperation.objects.create(organization=org, kind="order.checkout")


def _billing_profile(org):
    with tenant_context(org):
        return BillingProfile.objects.get_or_create(organization=org)[0]


def _events(org, action):
    with tenant_context(org):
        return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


# --- services -------------------------------------------------------------------------------------


def test_roles_cover_only_their_areas():
    assert grants.roles_cover([StaffRole.SUPPORT_READER], "licensing")
    assert not grants.roles_cover([StaffRole.SUPPORT_READER], "licensing", change=True)
    assert grants.roles_cover([StaffRole.LICENSE_OPERATOR], "licensing", change=True)
    assert not grants.roles_cover([StaffRole.LICENSE_OPERATOR], "billing")
    assert not grants.roles_cover([StaffRole.BILLING_OPERATOR], "licensing")
    assert not grants.roles_cover([StaffRole.BILLING_OPERATOR], "privacy")
    assert grants.roles_cover([StaffRole.PRIVACY_OPERATOR], "privacy", change=True)
    assert not grants.roles_cover([StaffRole.PRIVACY_OPERATOR], "licensing")
    assert grants.roles_cover([StaffRole.SECURITY_RESPONDER], "security", change=True)
    assert not grants.roles_cover([StaffRole.SUPPORT_READER], "no-such-area")


def test_owners_are_emailed_when_a_request_waits_for_them_and_not_when_the_policy_approves_it(
    django_capture_on_commit_callbacks,
):
    org, staff = OrganizationFactory(), UserFactory(is_staff=True, email="helper@reseller.example")
    owners = [MembershipFactory(organization=org, role=Role.OWNER).user for _ in range(2)]
    MembershipFactory(organization=org, role=Role.VIEWER)
    MembershipFactory(role=Role.OWNER)  # another organisation's owner
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        grants.staff_grant_request(
            organization=org,
            staff=staff,
            roles=[StaffRole.BILLING_OPERATOR],
            duration=timedelta(hours=4),
            justification="Ticket 77: invoice question",
        )
    [message] = mail.outbox
    assert sorted(message.to) == sorted(owner.email for owner in owners)
    assert "helper@reseller.example" in message.body and "Billing operator" in message.body
    assert "until 2026-03-02 13:00 UTC" in message.body and "Ticket 77: invoice question" in message.body
    assert reverse("team:reseller_access", kwargs={"org_slug": org.slug}) in message.body
    grants.staff_access_policy_update(organization=org, actor=owners[0], auto_approve_roles=[StaffRole.SUPPORT_READER])
    with django_capture_on_commit_callbacks(execute=True):
        grants.staff_grant_request(
            organization=org,
            staff=staff,
            roles=[StaffRole.SUPPORT_READER],
            duration=timedelta(hours=4),
            justification="Ticket 78",
        )
    assert len(mail.outbox) == 1  # approved by the policy: nothing to decide


def test_a_request_waits_for_approval_unless_the_policy_names_every_role():
    org, staff, owner = OrganizationFactory(), UserFactory(is_staff=True), UserFactory()
    waiting = grants.staff_grant_request(
        organization=org,
        staff=staff,
        roles=[StaffRole.SUPPORT_READER],
        duration=timedelta(hours=4),
        justification="Ticket 42",
    )
    assert waiting.status == StaffGrant.Status.REQUESTED
    grants.staff_access_policy_update(organization=org, actor=owner, auto_approve_roles=[StaffRole.SUPPORT_READER])
    auto = grants.staff_grant_request(
        organization=org,
        staff=staff,
        roles=[StaffRole.SUPPORT_READER],
        duration=timedelta(hours=4),
        justification="Ticket 43",
    )
    assert auto.status == StaffGrant.Status.ACTIVE and auto.auto_approved
    mixed = grants.staff_grant_request(
        organization=org,
        staff=staff,
        roles=[StaffRole.SUPPORT_READER, StaffRole.BILLING_OPERATOR],
        duration=timedelta(hours=4),
        justification="Ticket 44",
    )
    assert mixed.status == StaffGrant.Status.REQUESTED
    approved = grants.staff_grant_approve(organization=org, grant_id=mixed.pk, actor=owner)
    assert approved.status == StaffGrant.Status.ACTIVE and approved.approved_by == owner
    with pytest.raises(StaffGrant.DoesNotExist):  # another organisation's grant is not found
        grants.staff_grant_revoke(organization=OrganizationFactory(), grant_id=mixed.pk, actor=owner)
    grants.staff_grant_revoke(organization=org, grant_id=mixed.pk, actor=owner)
    assert StaffGrant.objects.get(pk=mixed.pk).status == StaffGrant.Status.REVOKED
    actions = [e.action for e in _events(org, "staff_grant.approved") + _events(org, "staff_grant.revoked")]
    assert actions == ["staff_grant.approved", "staff_grant.revoked"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"roles": []}, "roles"),
        ({"roles": ["root"]}, "roles"),
        ({"duration": timedelta(days=731)}, "duration"),
        ({"duration": timedelta(minutes=30)}, "duration"),
        ({"justification": "  "}, "justification"),
        ({"justification": "x" * 501}, "justification"),
    ],
)
def test_a_bad_request_is_refused_and_nothing_is_written(kwargs, field):
    org, staff = OrganizationFactory(), UserFactory(is_staff=True)
    request = {
        "roles": [StaffRole.SUPPORT_READER],
        "duration": timedelta(hours=1),
        "justification": "Ticket 1",
        **kwargs,
    }
    with pytest.raises(ValidationError) as refused:
        grants.staff_grant_request(organization=org, staff=staff, **request)
    assert field in refused.value.message_dict
    assert not StaffGrant.objects.exists()


def test_730_days_is_the_longest_grant_and_customers_cannot_hold_one():
    org = OrganizationFactory()
    grant = grants.staff_grant_request(
        organization=org,
        staff=UserFactory(is_staff=True),
        roles=[StaffRole.SUPPORT_READER],
        duration=timedelta(days=730),
        justification="Standing support contract",
    )
    assert grant.expires_at - grant.starts_at == timedelta(days=730)
    with pytest.raises(ValidationError):
        grants.staff_grant_request(
            organization=org,
            staff=UserFactory(),
            roles=[StaffRole.SUPPORT_READER],
            duration=timedelta(hours=1),
            justification="not staff",
        )


def test_a_grant_is_effective_until_the_exact_second_it_expires():
    with time_machine.travel(NOW, tick=False):
        grant = StaffGrantFactory(starts_at=NOW - timedelta(hours=1), expires_at=NOW + timedelta(hours=2))
    assert grant.is_effective(NOW + timedelta(hours=2) - timedelta(microseconds=1))
    assert not grant.is_effective(NOW + timedelta(hours=2))
    assert not grant.is_effective(NOW - timedelta(hours=1, microseconds=1))


def test_the_periodic_job_expires_grants_and_reminds_once_before_expiry(django_capture_on_commit_callbacks):
    grant = StaffGrantFactory(starts_at=NOW - timedelta(days=1), expires_at=NOW + timedelta(days=3))
    with django_capture_on_commit_callbacks(execute=True), time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        assert grants.staff_grants_expire_and_remind() == {"expired": 0, "reminded": 1}
        assert grants.staff_grants_expire_and_remind() == {"expired": 0, "reminded": 0}  # once
    with (
        django_capture_on_commit_callbacks(execute=True),
        time_machine.travel(NOW + timedelta(days=2, hours=1), tick=False),
    ):
        assert grants.staff_grants_expire_and_remind() == {"expired": 0, "reminded": 1}  # the 24-hour one
    assert [m.to for m in mail.outbox] == [[grant.staff.email], [grant.staff.email]]
    assert "ends" in mail.outbox[0].subject
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        assert grants.staff_grants_expire_and_remind()["expired"] == 1
    grant.refresh_from_db()
    assert grant.status == StaffGrant.Status.EXPIRED and grant.reminders_sent == ["3d", "24h"]
    assert _events(grant.organization, "staff_grant.expired")


def test_break_glass_needs_a_superuser_a_reason_and_at_most_four_hours(django_capture_on_commit_callbacks, settings):
    settings.SECURITY_ALERT_EMAILS = ("soc@reseller.example",)
    org = OrganizationFactory()
    superuser, staff = UserFactory(is_staff=True, is_superuser=True), UserFactory(is_staff=True)
    with pytest.raises(ValidationError):
        grants.staff_grant_break_glass(
            organization=org, staff=superuser, roles=[StaffRole.SUPPORT_READER], duration=timedelta(hours=1), reason=" "
        )
    with pytest.raises(ValidationError):
        grants.staff_grant_break_glass(
            organization=org,
            staff=superuser,
            roles=[StaffRole.SUPPORT_READER],
            duration=timedelta(hours=5),
            reason="Outage",
        )
    with pytest.raises(ValidationError):
        grants.staff_grant_break_glass(
            organization=org,
            staff=staff,
            roles=[StaffRole.SUPPORT_READER],
            duration=timedelta(hours=1),
            reason="Outage",
        )
    assert not StaffGrant.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        grant = grants.staff_grant_break_glass(
            organization=org,
            staff=superuser,
            roles=[StaffRole.SUPPORT_READER],
            duration=timedelta(hours=4),
            reason="Tenant outage, P1 4711",
        )
    assert grant.is_effective() and grant.break_glass
    assert mail.outbox[0].to == ["soc@reseller.example"] and "Tenant outage, P1 4711" in mail.outbox[0].body
    [event] = _events(org, "staff_grant.break_glass")
    assert event.metadata["grant"] == str(grant.pk)


# --- the admin, scoped by grants --------------------------------------------------------------------


def _staff_client(client, *, superuser=True):
    """A staff member signed in with a verified second factor. A superuser by default: every Django permission,
    so what the tests show is what the grants allow."""
    staff = UserFactory(is_staff=True, is_superuser=superuser)
    return verified_client(client, staff), staff


def test_without_a_grant_a_superuser_sees_no_customer(client):
    org = OrganizationFactory()
    order = _order(org)
    MembershipFactory(organization=org)
    client, _ = _staff_client(client, superuser=True)
    changelist = client.get(reverse("admin:licensing_provisioningoperation_changelist"))
    assert changelist.status_code == 200 and str(order.pk) not in changelist.content.decode()
    assert "0 provisioning operations" in changelist.content.decode()
    assert client.get(reverse("admin:licensing_provisioningoperation_change", args=[order.pk])).status_code == 404
    assert client.get(reverse("admin:accounts_organization_change", args=[org.pk])).status_code == 404
    people = client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert "0 users" in people


def test_a_support_reader_views_audited_with_the_grant_but_cannot_change(client):
    org, other = OrganizationFactory(), OrganizationFactory()
    order, hidden = _order(org), _order(other)
    profile = _billing_profile(org)
    client, staff = _staff_client(client)
    grant = StaffGrantFactory(staff=staff, organization=org, roles=[StaffRole.SUPPORT_READER])

    page = client.get(reverse("admin:licensing_provisioningoperation_changelist")).content.decode()
    assert str(order.pk) in page and str(hidden.pk) not in page
    assert client.get(reverse("admin:licensing_provisioningoperation_change", args=[order.pk])).status_code == 200
    assert client.get(reverse("admin:licensing_provisioningoperation_change", args=[hidden.pk])).status_code == 404
    client.get(reverse("admin:licensing_provisioningoperation_changelist") + f"?q={order.pk}")

    listed = _events(org, "staff.viewed_list")
    assert [(e.metadata["grant"], e.metadata["searched"]) for e in listed] == [
        (str(grant.pk), False),
        (str(grant.pk), True),
    ]
    [viewed] = _events(org, "staff.viewed")
    assert (viewed.actor_id, viewed.target_id, viewed.metadata["grant"]) == (
        str(staff.pk),
        str(order.pk),
        str(grant.pk),
    )
    assert not _events(other, "staff.viewed_list")

    # Billing: readable, but a POST change is refused and changes nothing.
    url = reverse("admin:billing_billingprofile_change", args=[profile.pk])
    assert client.get(url).status_code == 200
    refused = client.post(url, {"currency": "EUR", "tier": profile.tier, "payment_terms_days": 30})
    assert refused.status_code == 403
    with tenant_context(org):
        assert BillingProfile.objects.get(pk=profile.pk).currency == profile.currency


def test_a_billing_operator_sees_no_licensing_rows_and_changes_billing_with_the_grant(client):
    org = OrganizationFactory()
    order, profile = _order(org), _billing_profile(org)
    client, staff = _staff_client(client)
    grant = StaffGrantFactory(staff=staff, organization=org, roles=[StaffRole.BILLING_OPERATOR])
    assert str(order.pk) not in client.get(reverse("admin:licensing_provisioningoperation_changelist")).content.decode()
    assert client.get(reverse("admin:licensing_provisioningoperation_change", args=[order.pk])).status_code == 404
    assert client.get(reverse("admin:privacy_legalhold_changelist")).status_code in (200, 403)

    url = reverse("admin:billing_billingprofile_change", args=[profile.pk])
    response = client.post(url, {"currency": "EUR", "tier": profile.tier, "payment_terms_days": 14})
    assert response.status_code == 302, response.content.decode()[:500]
    with tenant_context(org):
        assert BillingProfile.objects.get(pk=profile.pk).payment_terms_days == 14
    [changed] = _events(org, "staff.changed")
    assert changed.metadata["grant"] == str(grant.pk)
    [service_event] = _events(org, "billing.profile_changed")  # the service's own event names the grant too
    assert service_event.metadata["grant"] == str(grant.pk)


def test_expiry_and_revocation_take_effect_on_the_next_request(client):
    org = OrganizationFactory()
    order = _order(org)
    client, staff = _staff_client(client)
    with time_machine.travel(NOW, tick=False):
        grant = StaffGrantFactory(
            staff=staff, organization=org, starts_at=NOW - timedelta(hours=1), expires_at=NOW + timedelta(hours=1)
        )
    url = reverse("admin:licensing_provisioningoperation_change", args=[order.pk])
    with time_machine.travel(NOW + timedelta(minutes=59), tick=False):
        verified_client(client, staff)
        assert client.get(url).status_code == 200
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert client.get(url).status_code == 404  # the periodic job has not run: still refused
    assert StaffGrant.objects.get(pk=grant.pk).status == StaffGrant.Status.ACTIVE

    second = StaffGrantFactory(staff=staff, organization=org)
    verified_client(client, staff)
    assert client.get(url).status_code == 200
    grants.staff_grant_revoke(organization=org, grant_id=second.pk, actor=UserFactory())
    assert client.get(url).status_code == 404


def test_break_glass_in_the_admin_needs_a_reason_and_a_recent_second_factor(client):
    org = OrganizationFactory()
    order = _order(org)
    client, staff = _staff_client(client, superuser=True)
    url = reverse("admin:accounts_staffgrant_break_glass")
    form = {"organization": org.slug, "roles": [StaffRole.SUPPORT_READER], "minutes": 60, "reason": ""}
    refused = client.post(url, form)
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    assert not StaffGrant.objects.exists()

    verified_client(client, staff, recent_mfa=False)
    assert "/accounts/mfa/" in client.post(url, {**form, "reason": "P1"})["Location"]
    assert not StaffGrant.objects.exists()

    verified_client(client, staff)
    assert client.post(url, {**form, "reason": "P1 outage 4711"}).status_code == 302
    grant = StaffGrant.objects.get()
    assert grant.break_glass and grant.expires_at - grant.starts_at == timedelta(hours=1)
    assert client.get(reverse("admin:licensing_provisioningoperation_change", args=[order.pk])).status_code == 200
    [viewed] = _events(org, "staff.viewed")
    assert viewed.metadata == {"grant": str(grant.pk), "break_glass": True, "model": "licensing.ProvisioningOperation"}


def test_a_staff_member_requests_access_in_the_admin(client):
    org = OrganizationFactory()
    client, staff = _staff_client(client, superuser=False)
    response = client.post(
        reverse("admin:accounts_staffgrant_request"),
        {
            "organization": org.slug,
            "roles": [StaffRole.LICENSE_OPERATOR],
            "hours": 8,
            "justification": "Ticket 99: seats",
            "ticket_reference": "99",
        },
    )
    assert response.status_code == 302
    grant = StaffGrant.objects.get()
    assert (grant.status, grant.staff, grant.roles) == (
        StaffGrant.Status.REQUESTED,
        staff,
        [StaffRole.LICENSE_OPERATOR],
    )
    bad = client.post(reverse("admin:accounts_staffgrant_request"), {"organization": "nope", "hours": "x"})
    assert bad.status_code == 200 and StaffGrant.objects.count() == 1


# --- the customer's Reseller access page ---------------------------------------------------------------


def test_the_owner_approves_denies_and_revokes_on_the_reseller_access_page(client):
    owner = MembershipFactory(role="owner")
    org = owner.organization
    verified_client(client, owner.user)
    url = reverse("team:reseller_access", kwargs={"org_slug": org.slug})
    empty = client.get(url).content.decode()
    assert "No requests waiting" in empty and "No emergency access, ever" in empty

    staff = UserFactory(is_staff=True, is_superuser=True)
    first = StaffGrantFactory(
        organization=org,
        staff=staff,
        status=StaffGrant.Status.REQUESTED,
        roles=[StaffRole.BILLING_OPERATOR],
        justification="Ticket 77 invoices",
    )
    second = StaffGrantFactory(organization=org, staff=staff, status=StaffGrant.Status.REQUESTED)
    glass = grants.staff_grant_break_glass(
        organization=org, staff=staff, roles=[StaffRole.SUPPORT_READER], duration=timedelta(hours=1), reason="Outage P1"
    )
    page = client.get(url).content.decode()
    assert "Ticket 77 invoices" in page and "Billing operator" in page and "Outage P1" in page

    def act(action, grant):
        return client.post(
            reverse(f"team:reseller_access_{action}", kwargs={"org_slug": org.slug, "grant_id": grant.pk})
        )

    assert act("approve", first).status_code == 302
    assert act("deny", second).status_code == 302
    assert act("revoke", first).status_code == 302
    assert act("revoke", glass).status_code == 302
    statuses = {g.pk: g.status for g in StaffGrant.objects.all()}
    assert statuses == {first.pk: "revoked", second.pk: "denied", glass.pk: "revoked"}
    assert "Outage P1" in client.get(url).content.decode()  # break glass stays visible afterwards
    # Approving an ended request says why, and changes nothing.
    assert act("approve", second).status_code == 302
    assert StaffGrant.objects.get(pk=second.pk).status == "denied"

    other = StaffGrantFactory(status=StaffGrant.Status.REQUESTED)  # another organisation's request
    assert act("approve", other).status_code == 404
    assert StaffGrant.objects.get(pk=other.pk).status == StaffGrant.Status.REQUESTED


def test_the_policy_form_refuses_unknown_roles_and_only_owners_see_the_page(client):
    owner = MembershipFactory(role="owner")
    org = owner.organization
    verified_client(client, owner.user)
    policy = reverse("team:reseller_access_policy", kwargs={"org_slug": org.slug})
    bad = client.post(policy, {"auto_approve_roles": ["root"]})
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()
    assert grants.staff_access_policy(org) == []
    assert client.post(policy, {"auto_approve_roles": [StaffRole.SUPPORT_READER]}).status_code == 302
    assert grants.staff_access_policy(org) == [StaffRole.SUPPORT_READER]

    viewer = MembershipFactory(organization=org, role="viewer")
    verified_client(client, viewer.user)
    assert client.get(reverse("team:reseller_access", kwargs={"org_slug": org.slug})).status_code == 403
    assert client.post(policy, {"auto_approve_roles": []}).status_code == 403
    assert grants.staff_access_policy(org) == [StaffRole.SUPPORT_READER]


def test_only_an_operator_runs_admin_actions_and_the_action_is_audited_with_the_grant(client):
    org = OrganizationFactory()
    operation = _order(org)
    client, staff = _staff_client(client)
    reader = StaffGrantFactory(staff=staff, organization=org, roles=[StaffRole.SUPPORT_READER])
    url = reverse("admin:licensing_provisioningoperation_changelist")
    form = {"action": "mark_failed", "_selected_action": [str(operation.pk)], "apply": "1", "reason": "Stuck"}
    client.post(url, form)
    with tenant_context(org):
        assert ProvisioningOperation.objects.get(pk=operation.pk).status != "failed"
    assert not _events(org, "staff.admin_action")

    grants.staff_grant_revoke(organization=org, grant_id=reader.pk, actor=staff, by_staff=True)
    operator = StaffGrantFactory(staff=staff, organization=org, roles=[StaffRole.LICENSE_OPERATOR])
    assert client.post(url, form).status_code == 302
    with tenant_context(org):
        assert ProvisioningOperation.objects.get(pk=operation.pk).status == "failed"
    [action] = _events(org, "staff.admin_action")
    assert (action.metadata["grant"], action.metadata["admin_action"]) == (str(operator.pk), "mark_failed")
    [service_event] = _events(org, "provisioning.mark_failed")
    assert service_event.metadata["grant"] == str(operator.pk)


@pytest.mark.parametrize(
    "data",
    [
        {"action": "mark_failed\x00", "_selected_action": ["x"]},
        {"action": "mark_failed", "_selected_action": ["ab\x00cd"], "apply": "1", "reason": "x"},
        {"action": "retry", "_selected_action": ["not-an-id", "\u202eevil"]},
    ],
)
def test_hostile_action_posts_are_refused_without_a_server_error(client, data):
    org = OrganizationFactory()
    _order(org)
    client, staff = _staff_client(client)
    StaffGrantFactory(staff=staff, organization=org, roles=[StaffRole.LICENSE_OPERATOR])
    response = client.post(reverse("admin:licensing_provisioningoperation_changelist"), {**data, "index": "0"})
    assert response.status_code < 500
    assert not _events(org, "staff.admin_action")
