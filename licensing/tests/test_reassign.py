"""Reassign in one step: the seat has exactly one holder in the portal's ledger at every committed moment,
Microsoft ends with the joiner holding it, and a refusal leaves the leaver with it."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from accounts.tests.api_support import api_client_for
from core.tenancy import tenant_context
from licensing.models import LicenseAssignment, ProvisioningOperation
from licensing.selectors.usage import seats_in_use
from licensing.services import assignments as assignment_services
from licensing.services import reassign as reassign_services
from licensing.services.assignments import AssignmentRefused, SeatsExhausted
from licensing.services.directory import linked_tenant

from . import directory_helpers
from .directory_helpers import SYSTEM, premium, run_sync
from .test_assignments import assign, unlicensed_users

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

graph = directory_helpers.graph
linked_org = directory_helpers.linked_org
State = LicenseAssignment.State


def full_pool(organization):
    """Business Premium with every one of its 25 seats assigned."""
    run_sync(organization)
    pool = premium(organization)
    with tenant_context(organization):
        free = pool.purchased - seats_in_use(organization, pool)
    for user in unlicensed_users(organization, pool, count=free):
        assign(organization, user, pool)
    with tenant_context(organization):
        pool.refresh_from_db()
        assert seats_in_use(organization, pool) == pool.purchased
    return pool


def holders(organization, pool) -> set:
    with tenant_context(organization):
        return set(LicenseAssignment.objects.for_org(organization).filter(
            sku=pool, state__in=LicenseAssignment.SEAT_HOLDING).values_list("user_id", flat=True))


def microsoft_skus(organization, graph, user) -> list[str]:
    with tenant_context(organization):
        tenant = linked_tenant(organization).tenant_id
    return [d.sku_id for d in graph.graph.license_details(tenant_id=str(tenant), user_id=str(user.graph_id))]


def leaver_of(organization, pool) -> LicenseAssignment:
    with tenant_context(organization):
        return (LicenseAssignment.objects.for_org(organization).select_related("user")
                .filter(sku=pool, state=State.ASSIGNED).order_by("pk").first())


def test_a_full_license_moves_from_leaver_to_joiner_with_one_holder_throughout(linked_org, emulator, graph,
                                                                               monkeypatch):
    pool = full_pool(linked_org)
    leaver = leaver_of(linked_org, pool)
    joiner = unlicensed_users(linked_org, pool, count=1)[0]
    # A plain assignment is refused: the pool is full. The reassign needs no free seat.
    with pytest.raises(SeatsExhausted):
        assign(linked_org, joiner, pool)

    seen = []
    real_call = reassign_services._call

    def watching(organization, operation, step, assignment, *, add):
        # The ledger as other requests see it, at each call to Microsoft.
        seen.append((step, seats_in_use(organization, pool), holders(organization, pool)))
        return real_call(organization, operation, step, assignment, add=add)

    monkeypatch.setattr(reassign_services, "_call", watching)
    with tenant_context(linked_org):
        moved = reassign_services.license_reassign(organization=linked_org, assignment=leaver, to_user=joiner,
                                                   actor=SYSTEM)
    assert [step for step, *_ in seen] == ["remove", "add"]
    for _step, in_use, who in seen:
        assert in_use == pool.purchased
        assert joiner.pk in who and leaver.user_id not in who
    with tenant_context(linked_org):
        moved.refresh_from_db()
        leaver.refresh_from_db()
        operation = ProvisioningOperation.objects.for_org(linked_org).get(pk=moved.operation_id)
    assert (moved.state, leaver.state) == (State.ASSIGNED, State.REMOVED)
    assert operation.status == ProvisioningOperation.Status.SUCCEEDED
    assert seats_in_use(linked_org, pool) == pool.purchased
    assert microsoft_skus(linked_org, graph, joiner) == [str(pool.sku_id)]
    assert microsoft_skus(linked_org, graph, leaver.user) == []


def test_when_microsoft_refuses_the_joiner_the_leaver_keeps_the_license(linked_org, emulator, graph):
    pool = full_pool(linked_org)
    leaver = leaver_of(linked_org, pool)
    joiner = unlicensed_users(linked_org, pool, count=1)[0]
    emulator.fault(f"/graph/v1.0/users/{joiner.graph_id}/assignLicense", method="POST", kind="status", status=400,
                   times=1)
    with tenant_context(linked_org):
        moved = reassign_services.license_reassign(organization=linked_org, assignment=leaver, to_user=joiner,
                                                   actor=SYSTEM)
    # The operation runs once the request's transaction commits.
    with tenant_context(linked_org):
        moved.refresh_from_db()
        leaver.refresh_from_db()
        operation = ProvisioningOperation.objects.for_org(linked_org).get(pk=moved.operation_id)
    assert leaver.state == State.ASSIGNED
    assert moved.state == State.FAILED and moved.error_message.startswith("The license stayed with the previous user")
    assert operation.status == ProvisioningOperation.Status.FAILED
    assert microsoft_skus(linked_org, graph, leaver.user) == [str(pool.sku_id)]
    assert microsoft_skus(linked_org, graph, joiner) == []
    assert seats_in_use(linked_org, pool) == pool.purchased


def test_refusals_before_anything_is_queued(linked_org, emulator):
    run_sync(linked_org)
    pool = premium(linked_org)
    leaver = leaver_of(linked_org, pool)
    holder = leaver_of(linked_org, pool)
    with tenant_context(linked_org):
        other_holder = (LicenseAssignment.objects.for_org(linked_org).select_related("user")
                        .filter(sku=pool, state=State.ASSIGNED).exclude(pk=holder.pk).first())
        before = ProvisioningOperation.objects.for_org(linked_org).count()
        with pytest.raises(AssignmentRefused) as same:
            reassign_services.license_reassign(organization=linked_org, assignment=leaver, to_user=leaver.user,
                                               actor=SYSTEM)
        with pytest.raises(AssignmentRefused) as already:
            reassign_services.license_reassign(organization=linked_org, assignment=leaver, to_user=other_holder.user,
                                               actor=SYSTEM)
        assert ProvisioningOperation.objects.for_org(linked_org).count() == before
    assert (same.value.code, already.value.code) == ("same_user", "already_assigned")


def test_the_api_reassigns_and_answers_409_for_a_refusal(linked_org, emulator, graph):
    pool = full_pool(linked_org)
    leaver = leaver_of(linked_org, pool)
    joiner = unlicensed_users(linked_org, pool, count=1)[0]
    api = api_client_for(linked_org, Role.LICENSE_ADMIN)
    url = f"/api/v1/license-assignments/{leaver.pk}/reassign/"
    assert api.post(url, {"user": str(leaver.user_id)}, format="json").status_code == 409
    response = api.post(url, {"user": str(joiner.pk)}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["user"] == str(joiner.pk)
    with tenant_context(linked_org):
        assert LicenseAssignment.objects.for_org(linked_org).get(pk=response.json()["id"]).state == State.ASSIGNED
    viewer = api_client_for(linked_org, Role.VIEWER)
    assert viewer.post(url, {"user": str(joiner.pk)}, format="json").status_code == 403


def test_a_license_being_moved_cannot_be_unassigned_meanwhile(linked_org, emulator, django_capture_on_commit_callbacks):
    run_sync(linked_org)
    pool = premium(linked_org)
    leaver = leaver_of(linked_org, pool)
    joiner = unlicensed_users(linked_org, pool, count=1)[0]
    with tenant_context(linked_org):
        # Hold back the dispatch: the operation has not run yet.
        with django_capture_on_commit_callbacks(execute=False):
            reassign_services.license_reassign(organization=linked_org, assignment=leaver, to_user=joiner,
                                               actor=SYSTEM)
        leaver.refresh_from_db()
        assert leaver.state == State.HANDING_OVER
        with pytest.raises(AssignmentRefused):
            assignment_services.license_unassign(organization=linked_org, assignment=leaver, actor=SYSTEM)
        with pytest.raises(AssignmentRefused):
            assignment_services.license_assign(organization=linked_org, user=leaver.user, sku=pool, actor=SYSTEM)
