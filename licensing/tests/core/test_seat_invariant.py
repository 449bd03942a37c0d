"""The seat invariant against the emulator: a reduction below the licenses held is refused with numbers
(409, nothing queued); releasing chosen users and reducing completes in one step; a release Microsoft
refuses stops the reduction; Microsoft-side drift is flagged by the reconcile and never unassigned."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

import licensing.tasks_directory  # noqa: F401 - registers the tasks the services enqueue by name
from accounts.models import MicrosoftTenant, StaffRole
from accounts.roles import Role
from accounts.tests.api_support import api_client_for
from accounts.tests.factories import MembershipFactory, StaffGrantFactory, TOTPDeviceFactory, UserFactory
from accounts.tests.helpers import verified_client
from core.audit import Actor
from core.models import AuditEvent
from core.tenancy import tenant_context
from licensing import demo
from licensing.microsoft.client import default_client
from licensing.models import (
    DirectoryUser,
    LicenseAssignment,
    Notification,
    ProvisioningOperation,
    Subscription,
    TenantSku,
)
from licensing.nce import RuleViolation
from licensing.provisioning import operation_execute
from licensing.selectors.seats import seats_held, seats_purchased
from licensing.services import assignments as assignment_services
from licensing.services import directory as directory_services
from licensing.services import subscriptions as services
from licensing.services.notifications import reminders_run
from licensing.services.seats import SeatsStillAssigned, excess_holders

from .test_refusals import forget_tokens

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]
State = LicenseAssignment.State


@pytest.fixture
def basic(ready, django_capture_on_commit_callbacks):
    """Business Basic, 10 seats, all 10 assigned through the portal."""
    org = ready.organization
    with django_capture_on_commit_callbacks(execute=True):
        subscription = demo.buy(organization=org, user=ready.user, catalog_id=demo.BUSINESS_BASIC, quantity=10)
        with tenant_context(org):
            directory_services.directory_sync_request(organization=org, actor=Actor.system("tests"))
    with tenant_context(org):
        pool = TenantSku.objects.for_org(org).get(sku_id=subscription.sku.provisioning_id)
        users = list(DirectoryUser.objects.for_org(org).filter(has_usage_location=True, removed_at__isnull=True)
                     .exclude(assignments__sku=pool)[:10])
        for user in users:
            assignment_services.license_assign(organization=org, user=user, sku=pool, actor=Actor.system("tests"))
    demo.run_pending_operations(org)
    with tenant_context(org):
        assert seats_held(org, pool) == 10 and seats_purchased(org, pool) == 10
    return ready, subscription, pool


def operations(org) -> int:
    with tenant_context(org):
        return ProvisioningOperation.objects.for_org(org).count()


def held(org, pool) -> list[LicenseAssignment]:
    with tenant_context(org):
        return list(LicenseAssignment.objects.for_org(org).filter(sku=pool, state__in=LicenseAssignment.SEAT_HOLDING)
                    .order_by("pk"))


def test_api_reduction_below_assigned_is_409_with_the_numbers_and_queues_nothing(basic):
    member, subscription, pool = basic
    org = member.organization
    client = api_client_for(org, Role.LICENSE_ADMIN)
    before = operations(org)
    response = client.patch(f"/api/v1/subscriptions/{subscription.pk}/", {"quantity": 7}, format="json")
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "seats_assigned"
    assert (error["assigned"], error["requested"], error["short"]) == (10, 7, 3)
    assert error["message"] == (f"{pool.label} has 10 licenses assigned; reducing to 7 seats needs 3 unassigned "
                                "first.")
    assert error["request_id"] and error["fields"] == {}
    assert operations(org) == before
    with tenant_context(org):
        assert Subscription.objects.get(pk=subscription.pk).quantity == 10


def test_cancellation_and_suspension_are_refused_while_licenses_are_assigned(basic):
    member, subscription, _pool = basic
    org = member.organization
    before = operations(org)
    with tenant_context(org), pytest.raises(SeatsStillAssigned) as cancel:
        services.subscription_cancel(subscription=subscription, actor=Actor.user(member.user))
    assert (cancel.value.assigned, cancel.value.requested, cancel.value.short) == (10, 0, 10)
    assert "cancelling leaves 0 seats and needs 10 unassigned first" in str(cancel.value)
    with tenant_context(org), pytest.raises(SeatsStillAssigned):
        services.subscription_suspend(subscription=subscription, actor=Actor.system("fraud"), reason="Alert 7")
    # A customer cannot override; staff can, with a reason that is audited.
    with tenant_context(org), pytest.raises(RuleViolation) as customer:
        services.subscription_cancel(subscription=subscription, actor=Actor.user(member.user),
                                     override_reason="because")
    assert customer.value.code == "override_not_allowed"
    assert operations(org) == before
    with tenant_context(org):
        services.subscription_suspend(subscription=subscription, actor=Actor.staff(member.user), reason="Alert 7",
                                      override_reason="Fraud confirmed by the partner's security team")
        override = AuditEvent.objects.for_org(org).get(action="seats.check_overridden")
    assert override.metadata["reason"] == "Fraud confirmed by the partner's security team"
    assert (override.metadata["assigned"], override.metadata["short"]) == (10, 10)


def test_release_chosen_users_and_reduce_completes_against_the_emulator(basic, emulator):
    member, subscription, pool = basic
    org = member.organization
    chosen = held(org, pool)[:3]
    client = api_client_for(org, Role.LICENSE_ADMIN)
    emulator.clear_requests_log()
    response = client.patch(f"/api/v1/subscriptions/{subscription.pk}/",
                            {"quantity": 7, "release": [str(a.pk) for a in chosen]}, format="json")
    assert response.status_code == 202, response.content
    reduction_id = response.json()["operation"]["id"]
    demo.run_pending_operations(org)
    with tenant_context(org):
        reduction = ProvisioningOperation.objects.get(pk=reduction_id)
        assert reduction.status == ProvisioningOperation.Status.SUCCEEDED, reduction.failure_reason
        assert {"submitted", "licenses_released", "seats_changed"} <= set(reduction.milestones)
        assert Subscription.objects.get(pk=subscription.pk).quantity == 7
        states = {a.pk: a.state for a in LicenseAssignment.objects.for_org(org).filter(pk__in=[c.pk for c in chosen])}
        assert set(states.values()) == {State.REMOVED}
        assert seats_held(org, pool) == 7
    # Graph saw the three removals before Partner Center saw the reduction.
    calls = emulator.requests_log()
    graph = [i for i, c in enumerate(calls) if "$batch" in c["path"] or "assignLicense" in c["path"]]
    partner = [i for i, c in enumerate(calls) if c["path"].startswith("/partnercenter") and c["method"] == "PATCH"]
    assert graph and partner and max(graph) < min(partner)


def test_a_release_microsoft_refuses_stops_the_reduction_and_says_why(basic, emulator):
    member, subscription, pool = basic
    org = member.organization
    chosen = held(org, pool)[:3]
    emulator.fault("/graph/v1.0/$batch", status=403, times=None)
    with tenant_context(org):
        operation = services.subscription_change_quantity(
            subscription=subscription, actor=Actor.user(member.user), quantity=7, release=[a.pk for a in chosen])
    demo.run_pending_operations(org)
    emulator.clear_faults()
    with tenant_context(org):
        operation = ProvisioningOperation.objects.get(pk=operation.pk)
        assert operation.status == ProvisioningOperation.Status.FAILED
        assert operation.last_error_code in ("release_failed", "seats_assigned")
        assert "seats were not reduced" in operation.failure_reason
        assert "seats_changed" not in operation.milestones
        assert Subscription.objects.get(pk=subscription.pk).quantity == 10
        assert seats_held(org, pool) == 10


def test_microsoft_side_drift_is_flagged_notified_shown_and_never_unassigned(basic, client):
    member, subscription, pool = basic
    org = member.organization
    license_admin = MembershipFactory(organization=org, role=Role.LICENSE_ADMIN).user
    viewer = MembershipFactory(organization=org, role=Role.VIEWER).user
    # A change made in Partner Center directly, not through the portal.
    with tenant_context(org):
        customer = MicrosoftTenant.objects.for_org(org).get().partner_customer_id
    default_client().partner_center.set_quantity(customer_id=customer, subscription_id=subscription.ms_subscription_id,
                                                 quantity=8, request_id=str(uuid.uuid4()))
    with tenant_context(org):
        services.subscription_reconcile(organization=org)
        flagged = TenantSku.objects.get(pk=pool.pk)
        assert flagged.over_assigned_since is not None and flagged.over_assigned_by == 2
        assert seats_held(org, pool) == 10  # nobody was unassigned
        notes = list(Notification.objects.for_org(org).filter(kind=Notification.Kind.OVER_ASSIGNED))
        newest = [str(a.user) for a in excess_holders(org, pool, 2)]
    assert {n.recipient_id for n in notes} == {member.user.pk, license_admin.pk}
    assert viewer.pk not in {n.recipient_id for n in notes}
    assert all(name in notes[0].body for name in newest) and "10 licenses assigned" in notes[0].body

    verified_client(client, member.user)
    for page in ("licensing:licenses", "dashboard:overview"):
        html = client.get(reverse(page, kwargs={"org_slug": org.slug})).content.decode()
        assert 'id="over-assigned"' in html and "2 more assigned than purchased" in html, page
    usage = api_client_for(org, Role.VIEWER).get("/api/v1/usage/").json()
    row = next(r for r in usage if r["sku_id"] == str(pool.sku_id))
    assert (row["purchased"], row["assigned"], row["available"]) == (8, 10, -2)

    # A second reconcile does not notify again; releasing two licenses resolves it.
    with tenant_context(org):
        services.subscription_reconcile(organization=org)
        assert Notification.objects.for_org(org).filter(kind=Notification.Kind.OVER_ASSIGNED).count() == 2
        for assignment in excess_holders(org, pool, 2):
            assignment_services.license_unassign(organization=org, assignment=assignment, actor=Actor.system("t"))
    demo.run_pending_operations(org)
    with tenant_context(org):
        services.subscription_reconcile(organization=org)
        resolved = TenantSku.objects.get(pk=pool.pk)
        assert resolved.over_assigned_since is None and resolved.over_assigned_by == 0
        assert AuditEvent.objects.for_org(org).filter(action="seats.over_assignment_resolved").exists()
    html = client.get(reverse("licensing:licenses", kwargs={"org_slug": org.slug})).content.decode()
    assert 'id="over-assigned"' not in html


def test_reduction_page_lists_holders_inactive_first_and_one_confirmation_releases_and_reduces(basic, client):
    member, subscription, pool = basic
    org = member.organization
    holders = held(org, pool)
    with tenant_context(org):
        stale = holders[5].user
        DirectoryUser.objects.filter(pk=stale.pk).update(last_sign_in_at=timezone.now() - timedelta(days=200),
                                                         created_at=timezone.now() - timedelta(days=400))
        DirectoryUser.objects.filter(pk__in=[a.user_id for a in holders if a.user_id != stale.pk]).update(
            last_sign_in_at=timezone.now() - timedelta(days=1))
    verified_client(client, member.user)
    refused = client.post(reverse("licensing:subscription_quantity", kwargs={"org_slug": org.slug,
                                                                           "pk": subscription.pk}),
                          {"seats-quantity": 8}, follow=True)
    page = refused.content.decode()
    assert refused.redirect_chain[-1][0].startswith(
        reverse("licensing:subscription_reduce", kwargs={"org_slug": org.slug, "pk": subscription.pk}))
    assert "has 10 licenses assigned; reducing to 8 seats needs 2 unassigned first." in page
    rows = page.split('id="release-table"')[1]
    assert rows.index(str(stale.user_principal_name)) < min(
        rows.index(str(a.user.user_principal_name)) for a in holders if a.user_id != stale.pk)
    assert 'id="reduce-short">2<' in page

    chosen = [holders[5], holders[0]]
    url = reverse("licensing:subscription_reduce", kwargs={"org_slug": org.slug, "pk": subscription.pk})
    too_few = client.post(url, {"quantity": 8, "release": [str(chosen[0].pk)]}, follow=True).content.decode()
    assert "has 9 licenses assigned; reducing to 8 seats needs 1 unassigned first." in too_few
    done = client.post(url, {"quantity": 8, "release": [str(a.pk) for a in chosen]})
    assert done.status_code == 302 and "/operations/" in done["Location"]
    demo.run_pending_operations(org)
    operation_page = client.get(done["Location"]).content.decode()
    assert 'data-step="licenses_released"' in operation_page and "Seats reduced at Microsoft" in operation_page
    with tenant_context(org):
        assert Subscription.objects.get(pk=subscription.pk).quantity == 8
        assert seats_held(org, pool) == 8


def test_staff_admin_gets_the_same_refusal_and_overrides_only_with_an_audited_reason(basic, client):
    member, subscription, pool = basic
    org = member.organization
    staff = UserFactory(is_staff=True, is_superuser=True)
    TOTPDeviceFactory(user=staff)
    StaffGrantFactory(staff=staff, organization=org, roles=[StaffRole.LICENSE_OPERATOR])
    verified_client(client, staff)
    url = reverse("admin:licensing_subscription_changelist")
    form = {"action": "change_seats", "_selected_action": [str(subscription.pk)], "apply": "1", "quantity": "7"}
    before = operations(org)

    refused = client.post(url, form, follow=True).content.decode()
    assert f"{pool.label} has 10 licenses assigned; reducing to 7 seats needs 3 unassigned first." in refused
    assert operations(org) == before
    cancel = client.post(url, {"action": "cancel", "_selected_action": [str(subscription.pk)], "apply": "1"},
                         follow=True).content.decode()
    assert "cancelling leaves 0 seats and needs 10 unassigned first" in cancel
    assert operations(org) == before

    client.post(url, {**form, "override_reason": "Customer asked by phone; ticket 4711"}, follow=True)
    with tenant_context(org):
        queued = ProvisioningOperation.objects.for_org(org).get(kind="subscription.set_quantity")
        override = AuditEvent.objects.for_org(org).get(action="seats.check_overridden")
    assert queued.payload["quantity"] == 7 and queued.payload["seat_check_overridden"] is True
    assert override.actor_type == AuditEvent.ActorType.STAFF and override.actor_id == str(staff.pk)
    assert override.metadata["reason"] == "Customer asked by phone; ticket 4711"
    assert (override.metadata["assigned"], override.metadata["requested"], override.metadata["short"]) == (10, 7, 3)


def test_a_lower_quantity_scheduled_for_renewal_is_warned_about_reminded_and_checked_when_it_takes_effect(
    ready, emulator, django_capture_on_commit_callbacks,
):
    org, actor = ready.organization, Actor.user(ready.user)
    with django_capture_on_commit_callbacks(execute=True):
        subscription = demo.buy(organization=org, user=ready.user, catalog_id=demo.BUSINESS_BASIC, quantity=5,
                                term="P1M")
        with tenant_context(org):
            directory_services.directory_sync_request(organization=org, actor=actor)
    with tenant_context(org):
        pool = TenantSku.objects.for_org(org).get(sku_id=subscription.sku.provisioning_id)
        for user in DirectoryUser.objects.for_org(org).filter(has_usage_location=True,
                                                              removed_at__isnull=True)[:5]:
            assignment_services.license_assign(organization=org, user=user, sku=pool, actor=actor)
    demo.run_pending_operations(org)

    # Scheduling is not refused (people leave before the renewal) but warned about, and recorded.
    with tenant_context(org):
        services.subscription_schedule_change(subscription=subscription, actor=actor, quantity=3)
    demo.run_pending_operations(org)
    with tenant_context(org):
        subscription = Subscription.objects.get(pk=subscription.pk)
        assert subscription.scheduled_next_term["quantity"] == 3
        warning = services.seat_warning_at_term_end(subscription=subscription, quantity=3)
        scheduled = AuditEvent.objects.for_org(org).get(action="subscription.schedule_requested")
    assert "has 5 licenses assigned; after the renewal" in warning and "Unassign 2 before then" in warning
    assert scheduled.metadata["seats_short_at_renewal"] == 2

    # The renewal reminder checks again before it takes effect.
    with tenant_context(org):
        reminders_run(organization=org, now=subscription.commitment_end - timedelta(days=3))
        reminder = Notification.objects.for_org(org).filter(kind=Notification.Kind.RENEWAL_REMINDER,
                                                            title__startswith=str(subscription)).first()
    assert reminder is not None and "2 more license(s) are assigned than the 3 seats" in reminder.body

    # Microsoft renews at 3 seats; the hourly reconcile finds 5 held and marks the pool, unassigning nobody.
    emulator.advance_clock(days=32)
    forget_tokens()  # they are stamped in the emulator's time

    with tenant_context(org):
        services.subscription_reconcile(organization=org)
        assert Subscription.objects.get(pk=subscription.pk).quantity == 3
        flagged = TenantSku.objects.get(pk=pool.pk)
        assert flagged.over_assigned_since is not None and flagged.over_assigned_by == 2
        assert seats_held(org, pool) == 5


def test_a_reduction_picked_up_before_its_unassignments_waits_for_them(basic):
    member, subscription, pool = basic
    org = member.organization
    chosen = held(org, pool)[:2]
    with tenant_context(org):
        reduction = services.subscription_change_quantity(
            subscription=subscription, actor=Actor.user(member.user), quantity=8, release=[a.pk for a in chosen])
    # A worker happens to take the reduction first: it waits, and Partner Center is not asked yet.
    operation_execute(operation_id=reduction.pk, org_id=org.pk)
    with tenant_context(org):
        waiting = ProvisioningOperation.objects.get(pk=reduction.pk)
        assert waiting.status == ProvisioningOperation.Status.PENDING and waiting.polls == 1
        assert "licenses_released" not in waiting.milestones
        assert Subscription.objects.get(pk=subscription.pk).quantity == 10
        # Meanwhile nobody can take the seats being removed.
        newcomer = DirectoryUser.objects.for_org(org).filter(has_usage_location=True).exclude(
            assignments__sku=pool).first()
        with pytest.raises(assignment_services.SeatsExhausted):
            assignment_services.license_assign(organization=org, user=newcomer, sku=pool, actor=Actor.system("t"))
    demo.run_pending_operations(org)
    with tenant_context(org):
        done = ProvisioningOperation.objects.get(pk=reduction.pk)
        assert done.status == ProvisioningOperation.Status.SUCCEEDED, done.failure_reason
        assert Subscription.objects.get(pk=subscription.pk).quantity == 8 and seats_held(org, pool) == 8
