"""What each user's license change sends to Graph and what its answer leaves behind: the $batch items, the
state and timestamps, the seat, the words a person reads, the operation's summary; and the refusals made
before anything is sent."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import OrganizationFactory, UserFactory
from core.audit import Actor
from core.field_locks import RESTRICTED_FIX, RESTRICTED_MESSAGE, lock_field
from core.models import FieldLock
from core.tenancy import tenant_context
from licensing import provisioning
from licensing.microsoft import errors as ms
from licensing.models import BulkJob, DirectoryUser, LicenseAssignment, ProvisioningOperation, TenantSku
from licensing.services import assignments as assignment_services
from licensing.services import bulk as bulk_services
from licensing.services.assignments import AssignmentRefused, SeatsExhausted, seats_free
from licensing.tests.core.factories import SkuFactory, SubscriptionFactory

from . import directory_helpers
from .directory_helpers import FABRIKAM, SYSTEM, csv_upload, premium, run_sync
from .test_assignments import assign, unlicensed_users

State = LicenseAssignment.State

# Fixtures shared by the directory tests (bound here so pytest finds them).
graph = directory_helpers.graph
linked_org = directory_helpers.linked_org

NOT_FOUND = ("user_not_found", "The user no longer exists in the tenant.",
             "Sync the directory: the user was probably deleted in Microsoft 365.")
RETRY_LATER = "Try again later; if it keeps failing, contact support."


def batch_items(emulator) -> list[dict]:
    """The inner requests of every $batch the emulator received, in order."""
    items = []
    for logged in emulator.requests_log(method="POST", path="/graph/v1.0/$batch"):
        items += json.loads(logged["body"])["requests"]
    return items


def delete_in_tenant(graph, user) -> None:
    graph.graph._call("DELETE", FABRIKAM, f"/users/{user.graph_id}", "users.delete")


def remove_in_tenant(graph, user, pool) -> None:
    graph.graph._call("POST", FABRIKAM, f"/users/{user.graph_id}/assignLicense", "users.assign_license",
                      json={"addLicenses": [], "removeLicenses": [str(pool.sku_id)]})


def unassign(organization, assignment, **kwargs):
    with tenant_context(organization):
        return assignment_services.license_unassign(organization=organization, assignment=assignment,
                                                    actor=SYSTEM, **kwargs)


def fresh(organization, assignment) -> LicenseAssignment:
    with tenant_context(organization):
        return LicenseAssignment.objects.for_org(organization).select_related("operation").get(pk=assignment.pk)


def held_assignments(organization, pool, count):
    with tenant_context(organization):
        return list(LicenseAssignment.objects.for_org(organization).select_related("user")
                    .filter(sku=pool, state=State.ASSIGNED).order_by("pk")[:count])


def outcome_fields(assignment) -> tuple:
    return assignment.state, assignment.error_code, assignment.error_message, assignment.fix_hint


# --- against the emulator -------------------------------------------------------------------------------

@pytest.mark.emulator
@pytest.mark.django_db(transaction=True)
def test_each_change_is_one_batch_item_naming_the_user_the_sku_and_the_plans(linked_org, emulator):
    run_sync(linked_org)
    pool = premium(linked_org)
    user = unlicensed_users(linked_org, pool, count=1)[0]
    plan = pool.service_plans[0]["id"]
    requester = UserFactory()
    emulator.clear_requests_log()

    assignment = assign(linked_org, user, pool, disabled_plans=[plan.upper()], requested_by=requester)
    assigned = fresh(linked_org, assignment)
    assert outcome_fields(assigned) == (State.ASSIGNED, "", "", "")
    assert assigned.assigned_at is not None and assigned.removed_at is None
    assert assigned.updated_at == assigned.assigned_at  # what "has anything changed?" checks read
    assert assigned.requested_by_id == requester.pk
    assert assigned.operation.result == {"assigned": 1, "removed": 0, "failed": 0}
    assert (assigned.operation.target_type, assigned.operation.target_id) == ("LicenseAssignment", str(assigned.pk))

    unassign(linked_org, assigned)
    removed = fresh(linked_org, assignment)
    assert outcome_fields(removed) == (State.REMOVED, "", "", "")
    assert removed.removed_at is not None and removed.assigned_at == assigned.assigned_at
    assert removed.requested_by_id == requester.pk  # a removal nobody signed keeps who asked for the license
    assert removed.operation.result == {"assigned": 0, "removed": 1, "failed": 0}

    sku = str(pool.sku_id)
    assert batch_items(emulator) == [
        {"id": str(assignment.pk), "method": "POST", "url": f"/users/{user.graph_id}/assignLicense",
         "headers": {"Content-Type": "application/json"},
         "body": {"addLicenses": [{"skuId": sku, "disabledPlans": [plan.lower()]}], "removeLicenses": []}},
        {"id": str(assignment.pk), "method": "POST", "url": f"/users/{user.graph_id}/assignLicense",
         "headers": {"Content-Type": "application/json"},
         "body": {"addLicenses": [], "removeLicenses": [sku]}},
    ]

    # Assigned again: the same row, its removal forgotten, the new plans and requester recorded.
    again_by = UserFactory()
    assign(linked_org, user, pool, requested_by=again_by)
    again = fresh(linked_org, assignment)
    assert outcome_fields(again) == (State.ASSIGNED, "", "", "")
    assert again.removed_at is None and again.assigned_at > removed.removed_at
    assert (again.disabled_plans, again.requested_by_id, again.source) == ([], again_by.pk, "portal")
    with tenant_context(linked_org):
        assert seats_free(linked_org, pool) == 4


@pytest.mark.emulator
@pytest.mark.django_db(transaction=True)
def test_graph_refusals_leave_each_user_in_the_right_state_with_words_to_act_on(linked_org, emulator, graph):
    run_sync(linked_org)
    pool = premium(linked_org)
    gone = unlicensed_users(linked_org, pool, count=1)[0]
    left_alone, deleted_holder = held_assignments(linked_org, pool, 2)
    with tenant_context(linked_org):
        free = seats_free(linked_org, pool)

    # Deleted in the tenant after the sync: the assignment fails with the fix and gives its seat back.
    delete_in_tenant(graph, gone)
    failed = fresh(linked_org, assign(linked_org, gone, pool))
    assert outcome_fields(failed) == (State.FAILED, *NOT_FOUND)
    assert failed.assigned_at is None
    assert failed.operation.result == {"assigned": 0, "removed": 0, "failed": 1}

    # The license was already taken away in the tenant, or the holder deleted there: the removal is done.
    remove_in_tenant(graph, left_alone.user, pool)
    delete_in_tenant(graph, deleted_holder.user)
    for holder in (left_alone, deleted_holder):
        unassign(linked_org, holder)
        removed = fresh(linked_org, holder)
        assert outcome_fields(removed) == (State.REMOVED, "", "", ""), holder.user_id
        assert removed.removed_at is not None
        assert removed.operation.result == {"assigned": 0, "removed": 1, "failed": 0}
    with tenant_context(linked_org):
        assert seats_free(linked_org, pool) == free + 2


@pytest.mark.emulator
@pytest.mark.django_db(transaction=True)
def test_a_bulk_batch_records_every_outcome_and_counts_them(linked_org, emulator, graph):
    run_sync(linked_org)
    pool = premium(linked_org)
    users = unlicensed_users(linked_org, pool, count=3)
    with tenant_context(linked_org):
        job = bulk_services.bulk_preview_csv(
            organization=linked_org, sku=pool, action=BulkJob.Action.ASSIGN, actor=SYSTEM,
            upload=csv_upload(["userPrincipalName"] + [u.user_principal_name for u in users]),
        )
    delete_in_tenant(graph, users[1])  # between the preview and the run
    with tenant_context(linked_org):
        bulk_services.bulk_job_confirm(organization=linked_org, job=job, actor=SYSTEM)
    with tenant_context(linked_org):
        rows = {a.user_id: a for a in LicenseAssignment.objects.for_org(linked_org).filter(bulk_job=job)}
        job = BulkJob.objects.for_org(linked_org).get(pk=job.pk)
        operations = {a.operation_id for a in rows.values()}
        operation = ProvisioningOperation.objects.for_org(linked_org).get(pk__in=operations)
    assert operation.result == {"assigned": 2, "removed": 0, "failed": 1}
    assert (operation.target_type, operation.target_id) == ("BulkJob", str(job.pk))
    assert outcome_fields(rows[users[0].pk]) == (State.ASSIGNED, "", "", "")
    assert outcome_fields(rows[users[1].pk]) == (State.FAILED, *NOT_FOUND)
    assert outcome_fields(rows[users[2].pk]) == (State.ASSIGNED, "", "", "")
    assert rows[users[0].pk].assigned_at == rows[users[2].pk].assigned_at is not None
    assert rows[users[1].pk].assigned_at is None
    assert (job.status, job.succeeded, job.failed) == (BulkJob.Status.COMPLETED_WITH_ERRORS, 2, 1)


@pytest.mark.emulator
@pytest.mark.django_db(transaction=True)
def test_a_bulk_removal_microsoft_refuses_keeps_the_license_and_counts_as_failed(linked_org, emulator):
    run_sync(linked_org)
    pool = premium(linked_org)
    holders = held_assignments(linked_org, pool, 2)
    with tenant_context(linked_org):
        free = seats_free(linked_org, pool)
        job = bulk_services.bulk_preview_csv(
            organization=linked_org, sku=pool, action=BulkJob.Action.UNASSIGN, actor=SYSTEM,
            upload=csv_upload(["userPrincipalName"] + [h.user.user_principal_name for h in holders]),
        )
    emulator.fault("/graph/v1.0/users/*/assignLicense", method="POST", kind="status", status=400, times=1)
    with tenant_context(linked_org):
        bulk_services.bulk_job_confirm(organization=linked_org, job=job, actor=SYSTEM)
    with tenant_context(linked_org):
        job = BulkJob.objects.for_org(linked_org).get(pk=job.pk)
        rows = sorted(LicenseAssignment.objects.for_org(linked_org).filter(bulk_job=job), key=lambda a: a.state)
        assert seats_free(linked_org, pool) == free + 1
    refused, removed = rows
    assert (refused.state, refused.error_code, refused.fix_hint) == (
        State.ASSIGNED, "rejected", "Correct the input and retry.")
    assert refused.error_message.startswith("Microsoft refused the change: ")
    assert outcome_fields(removed) == (State.REMOVED, "", "", "")
    assert (job.status, job.succeeded, job.failed) == (BulkJob.Status.COMPLETED_WITH_ERRORS, 1, 1)


@pytest.mark.emulator
@pytest.mark.django_db(transaction=True)
def test_a_batch_given_up_frees_what_it_held_and_says_why(linked_org, monkeypatch):
    run_sync(linked_org)
    pool = premium(linked_org)
    held = held_assignments(linked_org, pool, 1)[0]
    users = unlicensed_users(linked_org, pool, count=3)
    monkeypatch.setattr(provisioning, "operation_dispatch", lambda **kwargs: None)  # Microsoft never answers
    with tenant_context(linked_org):
        job = bulk_services.bulk_preview_csv(
            organization=linked_org, sku=pool, action=BulkJob.Action.ASSIGN, actor=SYSTEM,
            upload=csv_upload(["userPrincipalName"] + [u.user_principal_name for u in users[:2]]),
        )
        bulk_services.bulk_job_confirm(organization=linked_org, job=job, actor=SYSTEM)
    with tenant_context(linked_org):
        # Nothing answered yet: nothing succeeded, and the job runs on.
        job = assignment_services.bulk_job_record_progress(organization=linked_org, job_id=job.pk)
        assert (job.status, job.succeeded, job.failed, job.finished_at) == (BulkJob.Status.RUNNING, 0, 0, None)
        first, second = LicenseAssignment.objects.for_org(linked_org).filter(bulk_job=job)  # the handler's order
        operation = ProvisioningOperation.objects.for_org(linked_org).get(pk=first.operation_id)
        operation.checkpoint = {"done": {str(first.pk): {"ok": True}}}  # answered before the batch was stopped
        operation.save(update_fields=["checkpoint"])
    staff = Actor.staff(UserFactory(is_staff=True))
    with tenant_context(linked_org):
        provisioning.operation_mark_failed(operation=operation, actor=staff, reason="Customer asked to stop")
    assert outcome_fields(fresh(linked_org, first)) == (State.ASSIGNED, "", "", "")
    assert outcome_fields(fresh(linked_org, second)) == (
        State.FAILED, "marked_failed", "Customer asked to stop", RETRY_LATER)
    with tenant_context(linked_org):
        job = BulkJob.objects.for_org(linked_org).get(pk=job.pk)
    assert (job.status, job.succeeded, job.failed) == (BulkJob.Status.COMPLETED_WITH_ERRORS, 1, 1)

    # Given up with no reason and no code recorded (an error Microsoft sent without either).
    pending = assign(linked_org, users[2], pool)
    unassign(linked_org, held)
    assert outcome_fields(fresh(linked_org, pending)) == (State.PENDING, "", "", "")
    assert outcome_fields(fresh(linked_org, held)) == (State.REMOVING, "", "", "")
    for assignment in (pending, held):
        with tenant_context(linked_org):
            operation = ProvisioningOperation.objects.for_org(linked_org).get(pk=fresh(linked_org, assignment)
                                                                              .operation_id)
            operation.failure_reason = operation.last_error_code = ""
            assignment_services._release_unfinished(operation)
    assert outcome_fields(fresh(linked_org, pending)) == (
        State.FAILED, "failed", "Microsoft did not accept the change.", RETRY_LATER)
    assert outcome_fields(fresh(linked_org, held)) == (
        State.ASSIGNED, "failed", "Microsoft did not accept the change.", RETRY_LATER)


# --- without Microsoft ----------------------------------------------------------------------------------

def test_an_item_graph_left_unanswered_is_sent_again_as_a_transient_failure():
    outcome = assignment_services._outcome(LicenseAssignment(state=State.PENDING), None)
    assert set(outcome) == {"retry", "error"} and outcome["retry"] is True
    assert isinstance(outcome["error"], ms.TransientFailure)
    assert outcome["error"].message == "Graph did not answer this item of the batch."


def test_a_stored_outcome_fits_its_columns_and_a_missing_word_is_left_empty():
    long = {"ok": False, "code": "c" * 70, "message": "m" * 600, "fix": "f" * 400}
    assignment = LicenseAssignment(state=State.PENDING)
    assert assignment_services._apply_result(assignment, long, save=False) == "failed"
    assert (len(assignment.error_code), len(assignment.error_message), len(assignment.fix_hint)) == (64, 500, 300)
    bare = LicenseAssignment(state=State.REMOVING, assigned_at=timezone.now())
    assert assignment_services._apply_result(bare, {"ok": False}, save=False) == "failed"
    assert outcome_fields(bare) == (State.ASSIGNED, "", "", "")
    assert bare.removed_at is None


def test_disabled_plans_are_matched_without_case_and_unknown_ones_are_named():
    pool = TenantSku(display_name="Microsoft 365 Business Premium",
                     service_plans=[{"id": "AAAA-1"}, {"id": "bbbb-2"}])
    assert assignment_services.validate_disabled_plans(pool, ["BBBB-2", "aaaa-1", "Aaaa-1"]) == ["aaaa-1", "bbbb-2"]
    assert assignment_services.validate_disabled_plans(pool, []) == []
    with pytest.raises(ValidationError) as refused:
        assignment_services.validate_disabled_plans(pool, ["ZZZZ-9", "aaaa-1", "Yyyy-8"])
    assert refused.value.message_dict == {
        "disabled_plans": ["Not service plans of Microsoft 365 Business Premium: yyyy-8, zzzz-9."]}
    with pytest.raises(ValidationError):
        assignment_services.validate_disabled_plans(TenantSku(display_name="No plans"), ["aaaa-1"])


@pytest.mark.django_db
def test_a_user_who_cannot_take_a_license_is_refused_with_the_reason_and_the_fix():
    organization = OrganizationFactory()
    other = OrganizationFactory()

    def refusal(user) -> tuple:
        with tenant_context(organization), pytest.raises(AssignmentRefused) as refused:
            assignment_services.refuse_if_unassignable(user)
        return refused.value.code, refused.value.message, refused.value.fix_hint

    def user(**fields) -> DirectoryUser:
        return DirectoryUser(organization=organization, **{"has_usage_location": True, **fields})

    assert refusal(user(removed_at=timezone.now(), has_usage_location=False)) == (
        "user_removed", "The user was deleted in the tenant.", "Sync the directory.")
    assert refusal(user(has_usage_location=False)) == (
        "usage_location_missing", "The user has no usage location.",
        "Set the user's usage location (country) in the Microsoft 365 admin center, sync the directory, "
        "then assign again.")

    disputed = user(has_usage_location=False)
    with tenant_context(organization):
        lock_field(organization=organization, model=DirectoryUser, object_id=disputed.pk, field_name="display_name")
        FieldLock.objects.for_org(organization).update(restricted_at=timezone.now())
        # A user with only an ordinary lock, and the same id restricted in another organisation, may be assigned.
        lock_field(organization=organization, model=DirectoryUser, object_id=uuid.uuid4(), field_name="mail")
    with tenant_context(other):
        same_id = uuid.uuid4()
        lock_field(organization=other, model=DirectoryUser, object_id=same_id, field_name="display_name")
        FieldLock.objects.for_org(other).update(restricted_at=timezone.now())
    assert refusal(disputed) == ("restricted", RESTRICTED_MESSAGE, RESTRICTED_FIX)
    with tenant_context(organization):
        assignment_services.refuse_if_unassignable(user())
        assignment_services.refuse_if_unassignable(user(id=same_id))


@pytest.mark.django_db
def test_buying_the_missing_seats_adds_them_to_the_largest_live_subscription(django_assert_num_queries):
    organization = OrganizationFactory()
    with tenant_context(organization):
        pool = TenantSku.objects.create(organization=organization, sku_id=uuid.uuid4(), display_name="E3")
        sku = SkuFactory(provisioning_id=str(pool.sku_id).upper())
        short = SeatsExhausted(sku=pool, needed=5, available=2)
        product = reverse("licensing:product", kwargs={"org_slug": organization.slug, "pk": sku.product.pk})
        assert short.buy_url(organization) == f"{product}?quantity=3"
        assert assignment_services.buy_more_url(organization, sku=pool) == f"{product}?quantity=1"
        other = TenantSku.objects.create(organization=organization, sku_id=uuid.uuid4(), display_name="E5")
        other_sku = SkuFactory(provisioning_id=str(other.sku_id))
        with django_assert_num_queries(2):  # the catalog with its products, then the subscriptions
            urls = assignment_services.buy_more_urls(organization, {pool: 3, other: 2})
        other_product = reverse("licensing:product", kwargs={"org_slug": organization.slug,
                                                              "pk": other_sku.product.pk})
        assert urls == {pool.pk: f"{product}?quantity=3", other.pk: f"{other_product}?quantity=2"}

        SubscriptionFactory(organization=organization, sku=sku, quantity=40, status="deleted")
        SubscriptionFactory(organization=organization, sku=sku, quantity=30, ms_subscription_id=None)
        SubscriptionFactory(organization=organization, sku=sku, quantity=10)
        largest = SubscriptionFactory(organization=organization, sku=sku, quantity=25)
        SubscriptionFactory(organization=organization, sku=SkuFactory(), quantity=99)
        page = reverse("licensing:subscription", kwargs={"org_slug": organization.slug, "pk": largest.pk})
        assert short.buy_url(organization) == f"{page}?quantity=28#change-seats"
        assert assignment_services.buy_more_url(organization, sku=pool, seats=0) == f"{page}?quantity=26#change-seats"
        assert assignment_services.buy_more_urls(organization, {}) == {}
