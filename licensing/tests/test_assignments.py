"""License assignment through the outbox and the emulator: per-user results, fixes, seat safety."""

from __future__ import annotations

import pytest

from accounts.tests.factories import UserFactory
from core.audit import Actor
from core.tenancy import tenant_context
from licensing import provisioning
from licensing.models import DirectoryUser, LicenseAssignment, ProvisioningOperation
from licensing.services import assignments as assignment_services
from licensing.services.assignments import AssignmentRefused, SeatsExhausted

from . import directory_helpers
from .directory_helpers import SYSTEM, premium, run_sync

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

# Fixtures shared by the directory tests (bound here so pytest finds them).
graph = directory_helpers.graph
linked_org = directory_helpers.linked_org


def unlicensed_users(organization, pool, *, with_location=True, count=5):
    with tenant_context(organization):
        held = LicenseAssignment.objects.for_org(organization).filter(
            sku=pool, state__in=LicenseAssignment.SEAT_HOLDING
        ).values_list("user_id", flat=True)
        users = DirectoryUser.objects.for_org(organization).filter(
            has_usage_location=with_location, removed_at__isnull=True
        ).exclude(pk__in=held)
        return list(users[:count])


def assign(organization, user, pool, **kwargs):
    with tenant_context(organization):
        return assignment_services.license_assign(organization=organization, user=user, sku=pool, actor=SYSTEM,
                                                  **kwargs)


def test_assign_reaches_graph_and_is_idempotent(linked_org, emulator, graph):
    run_sync(linked_org)
    pool = premium(linked_org)
    user = unlicensed_users(linked_org, pool, count=1)[0]
    emulator.clear_requests_log()
    first = assign(linked_org, user, pool)
    again = assign(linked_org, user, pool)
    assert again.pk == first.pk
    with tenant_context(linked_org):
        first.refresh_from_db()
    assert first.state == LicenseAssignment.State.ASSIGNED
    details = graph.graph.license_details(tenant_id=str(user_tenant(linked_org)), user_id=str(user.graph_id))
    assert [d.sku_id for d in details] == [str(pool.sku_id)]
    assert len(emulator.requests_log(path="/graph/v1.0/users/*/assignLicense")) == 1


def user_tenant(organization):
    from licensing.services.directory import linked_tenant

    with tenant_context(organization):
        return linked_tenant(organization).tenant_id


def test_disabled_plans_must_belong_to_the_sku(linked_org):
    run_sync(linked_org)
    pool = premium(linked_org)
    user = unlicensed_users(linked_org, pool, count=1)[0]
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        assign(linked_org, user, pool, disabled_plans=["00000000-0000-0000-0000-000000000000"])
    plan = pool.service_plans[0]["id"]
    assignment = assign(linked_org, user, pool, disabled_plans=[plan])
    with tenant_context(linked_org):
        assignment.refresh_from_db()
    assert assignment.state == LicenseAssignment.State.ASSIGNED
    assert assignment.disabled_plans == [plan.lower()]


def test_missing_usage_location_is_refused_with_a_fix(linked_org):
    run_sync(linked_org)
    pool = premium(linked_org)
    user = unlicensed_users(linked_org, pool, with_location=False, count=1)[0]
    with pytest.raises(AssignmentRefused) as refused:
        assign(linked_org, user, pool)
    assert refused.value.code == "usage_location_missing"
    assert "usage location" in refused.value.fix_hint


def test_graph_refusal_is_recorded_per_user_and_frees_the_seat(linked_org, emulator, graph):
    run_sync(linked_org)
    pool = premium(linked_org)
    user = unlicensed_users(linked_org, pool, count=1)[0]
    # The directory changed since the sync: Graph now refuses for lack of a usage location.
    graph.graph._call("PATCH", str(user_tenant(linked_org)), f"/users/{user.graph_id}", "users.update",
                      json={"usageLocation": None})
    assignment = assign(linked_org, user, pool)
    with tenant_context(linked_org):
        assignment.refresh_from_db()
        free = assignment_services.seats_free(linked_org, pool)
    assert assignment.state == LicenseAssignment.State.FAILED
    assert assignment.error_code == "usage_location_missing"
    assert assignment.fix_hint
    assert free == 5


def test_seats_run_out_with_an_offer_to_buy(linked_org):
    run_sync(linked_org)
    pool = premium(linked_org)
    users = unlicensed_users(linked_org, pool, count=6)
    for user in users[:5]:
        assign(linked_org, user, pool)
    with pytest.raises(SeatsExhausted) as exhausted:
        assign(linked_org, users[5], pool)
    assert exhausted.value.short == 1
    with tenant_context(linked_org):
        assert assignment_services.seats_free(linked_org, pool) == 0


def test_unassign_frees_the_seat_once_graph_confirms(linked_org, graph):
    run_sync(linked_org)
    pool = premium(linked_org)
    with tenant_context(linked_org):
        held = LicenseAssignment.objects.for_org(linked_org).filter(sku=pool, state="assigned").first()
        assignment_services.license_unassign(organization=linked_org, assignment=held, actor=SYSTEM)
    with tenant_context(linked_org):
        held.refresh_from_db()
        assert held.state == LicenseAssignment.State.REMOVED
        assert assignment_services.seats_free(linked_org, pool) == 6
        operation = ProvisioningOperation.objects.for_org(linked_org).get(kind=assignment_services.OPERATION_KIND)
    assert operation.status == ProvisioningOperation.Status.SUCCEEDED


def test_an_operation_that_fails_for_good_frees_its_seats_and_says_why(linked_org, monkeypatch):
    """Staff mark a stuck batch failed: the pending assignment fails with the reason and frees its seat,
    the pending removal goes back to assigned, and a user the batch already finished keeps its result."""
    run_sync(linked_org)
    pool = premium(linked_org)
    with tenant_context(linked_org):
        free_before = assignment_services.seats_free(linked_org, pool)
        held = LicenseAssignment.objects.for_org(linked_org).filter(sku=pool, state="assigned").first()
    monkeypatch.setattr(provisioning, "operation_dispatch", lambda **kwargs: None)  # Microsoft never answers
    first, second = unlicensed_users(linked_org, pool, count=2)
    pending = assign(linked_org, first, pool)
    finished = assign(linked_org, second, pool)
    with tenant_context(linked_org):
        assignment_services.license_unassign(organization=linked_org, assignment=held, actor=SYSTEM)
        held.refresh_from_db()
        assert (pending.state, held.state) == (LicenseAssignment.State.PENDING, LicenseAssignment.State.REMOVING)
        assert assignment_services.seats_free(linked_org, pool) == free_before - 2
        # The second user's call already came back assigned before the batch was stopped.
        ProvisioningOperation.objects.for_org(linked_org).filter(pk=finished.operation_id).update(
            checkpoint={"done": {str(finished.pk): {"ok": True}}}
        )
    staff = Actor.staff(UserFactory(is_staff=True))
    for assignment in (pending, finished, held):
        with tenant_context(linked_org):
            operation = ProvisioningOperation.objects.for_org(linked_org).get(pk=assignment.operation_id)
            if operation.status != ProvisioningOperation.Status.FAILED:
                provisioning.operation_mark_failed(operation=operation, actor=staff, reason="Customer asked to stop")
    with tenant_context(linked_org):
        for assignment in (pending, finished, held):
            assignment.refresh_from_db()
        assert pending.state == LicenseAssignment.State.FAILED
        assert pending.error_code == "marked_failed"
        assert pending.error_message == "Customer asked to stop"
        assert pending.fix_hint == "Try again later; if it keeps failing, contact support."
        assert held.state == LicenseAssignment.State.ASSIGNED
        assert held.error_message == "Customer asked to stop"
        assert finished.state == LicenseAssignment.State.ASSIGNED
        assert assignment_services.seats_free(linked_org, pool) == free_before - 1
