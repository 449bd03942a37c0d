"""License assignment: seats reserved under a row lock, Graph calls through the outbox in $batch of 20 each.

Seat safety: every path that takes a seat locks the SKU's ``TenantSku`` row
(``select_for_update``, in primary-key order when there are several) and only then counts
the assignments holding a seat. Concurrent requests therefore queue on the lock and each
sees the others' committed reservations: more seats than purchased cannot be handed out.

The Graph side is one outbox operation per at most 100 assignments, sent as $batch calls of 20
(Graph's limit). Per-item results are kept in the operation's checkpoint, so a retry after
throttling re-sends only the items that have not been answered yet: each user is changed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Count, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from core.audit import Actor, audit_record
from core.field_locks import RESTRICTED_FIX, RESTRICTED_MESSAGE, is_restricted, restricted_object_ids
from core.fields import encrypted_bulk_insert
from licensing.microsoft import errors as ms
from licensing.microsoft.resources import BatchItemResult
from licensing.models import (
    BulkJob,
    DirectoryUser,
    LicenseAssignment,
    ProvisioningOperation,
    Sku,
    Subscription,
    TenantSku,
)
from licensing.provisioning import operation_enqueue, register_operation
from licensing.refusals import explain_assignment_error as explain
from licensing.selectors.usage import seats_free

from .directory import graph_for

OPERATION_KIND = "license.apply_changes"
GRAPH_BATCH_SIZE = 20
# Assignments per outbox operation: five $batch calls. An operation's own cost (claim, attempt, audit,
# progress, disclosure lookups) was most of a bulk job's time at one $batch each; a retry still re-sends
# only the unanswered items, and a large job still spreads over many operations (and workers).
OPERATION_SIZE = 5 * GRAPH_BATCH_SIZE
State = LicenseAssignment.State


class SeatsExhausted(Exception):
    """Not enough free seats. Carries what is needed so the UI can offer to buy the difference."""

    def __init__(self, *, sku: TenantSku, needed: int, available: int):
        self.sku = sku
        self.needed = needed
        self.available = max(0, available)
        self.short = max(0, needed - self.available)
        super().__init__(
            f"{sku.label}: {needed} seat(s) needed, {self.available} free. Buy {self.short} more seat(s) to continue."
        )

    def buy_url(self, organization) -> str:
        return buy_more_url(organization, sku=self.sku, seats=self.short)


class AssignmentRefused(Exception):
    def __init__(self, code: str, message: str, fix_hint: str = ""):
        self.code = code
        self.message = message
        self.fix_hint = fix_hint
        super().__init__(message)


def buy_more_url(organization, *, sku: TenantSku | None = None, seats: int = 1) -> str:
    """Where to buy ``seats`` more of a seat pool; see :func:`buy_more_urls`."""
    if sku is None:
        return _url("licensing:catalog", org_slug=organization.slug)
    return buy_more_urls(organization, {sku: seats})[sku.pk]


def buy_more_urls(organization, wanted: dict[TenantSku, int], *,
                  subscriptions: list[Subscription] | None = None) -> dict:
    """Seat pool pk -> where to buy more of it: the live subscription's seat change with the new quantity
    filled in (adding seats to it keeps one subscription and one renewal date; the largest, when several),
    else the catalog product, else the catalog. Two queries whatever the number of pools; one given the
    organisation's ``subscriptions`` (``licensing.selectors.seats.organization_subscriptions``)."""
    catalog = _url("licensing:catalog", org_slug=organization.slug)
    by_id = {str(pool.sku_id).lower(): pool for pool in wanted}
    if not by_id:
        return {}
    match = Q()
    for sku_id in by_id:
        match |= Q(provisioning_id__iexact=sku_id)
    catalog_skus = {s.pk: s for s in Sku.objects.filter(match).select_related("product")}
    if subscriptions is None:
        live = (Subscription.objects.for_org(organization)
                .filter(sku_id__in=list(catalog_skus), status=Subscription.Status.ACTIVE)
                .exclude(ms_subscription_id=None).order_by("-quantity"))
    else:
        live = sorted((sub for sub in subscriptions if sub.sku_id in catalog_skus
                       and sub.status == Subscription.Status.ACTIVE and sub.ms_subscription_id is not None),
                      key=lambda sub: -sub.quantity)
    subscriptions = {}
    for subscription in live:
        subscriptions.setdefault(subscription.sku_id, subscription)
    urls = {pool.pk: catalog for pool in wanted}
    for sku in catalog_skus.values():
        pool = by_id.get(sku.provisioning_id.lower())
        if pool is None:
            continue
        seats = max(1, wanted[pool])
        subscription = subscriptions.get(sku.pk)
        if subscription is not None:
            page = _url("licensing:subscription", org_slug=organization.slug, pk=subscription.pk)
            urls[pool.pk] = f"{page}?quantity={subscription.quantity + seats}#change-seats"
        elif sku.product.is_active:
            page = _url("licensing:product", org_slug=organization.slug, pk=sku.product.pk)
            urls[pool.pk] = f"{page}?quantity={seats}"
    return urls


def _url(name: str, **kwargs) -> str:
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        return ""


# --- seat accounting ----------------------------------------------------------------------------


def lock_seat_pools(organization, sku_ids: Iterable) -> dict:
    """Lock the seat-pool rows, in primary-key order so two requests for the same SKUs cannot deadlock."""
    pools = (
        TenantSku.objects.for_org(organization)
        .select_for_update()
        .filter(pk__in=sorted({getattr(s, "pk", s) for s in sku_ids}, key=str))
        .order_by("pk")
    )
    return {pool.pk: pool for pool in pools}


def validate_disabled_plans(sku: TenantSku, disabled_plans: Sequence[str]) -> list[str]:
    known = {str(p.get("id")).lower() for p in sku.service_plans or []}
    plans = sorted({str(p).lower() for p in disabled_plans or []})
    unknown = [p for p in plans if p not in known]
    if unknown:
        raise ValidationError({"disabled_plans": f"Not service plans of {sku.label}: {', '.join(unknown)}."})
    return plans


def refuse_if_unassignable(user: DirectoryUser) -> None:
    if user.removed_at is not None:
        raise AssignmentRefused("user_removed", "The user was deleted in the tenant.", "Sync the directory.")
    if is_restricted(user.organization_id, DirectoryUser, user.pk):
        raise AssignmentRefused("restricted", RESTRICTED_MESSAGE, RESTRICTED_FIX)
    if not user.has_usage_location:
        fix = explain(ms.UsageLocationMissing(""))
        raise AssignmentRefused(fix.code, fix.message, fix.fix_hint)


# --- single assign / unassign -------------------------------------------------------------------------


@transaction.atomic
def license_assign(
    *, organization, user: DirectoryUser, sku: TenantSku, actor: Actor, disabled_plans: Sequence[str] = (),
    requested_by=None,
) -> LicenseAssignment:
    """Reserve a seat and queue the Graph call. Idempotent: an existing assignment is returned (plans updated)."""
    pool = lock_seat_pools(organization, [sku])[sku.pk]
    plans = validate_disabled_plans(pool, disabled_plans)
    refuse_if_unassignable(user)
    assignment = (
        LicenseAssignment.objects.for_org(organization).select_for_update().filter(user=user, sku=pool).first()
    )
    if assignment is not None and assignment.state == State.HANDING_OVER:
        raise AssignmentRefused("in_progress", "This license is being moved to another user.",
                                "Wait until the move finishes, then try again.")
    if assignment is not None and assignment.holds_seat:
        if assignment.state == State.ASSIGNED and assignment.disabled_plans != plans:
            assignment.disabled_plans = plans
            _queue(organization, [assignment], State.PENDING, actor, requested_by)
            audit_record(actor=actor, action="license.plans_changed", organization=organization, target=assignment,
                         metadata={"sku": str(pool.sku_id)})
        return assignment
    free = seats_free(organization, pool)
    if free < 1:
        raise SeatsExhausted(sku=pool, needed=1, available=free)
    assignment = assignment or LicenseAssignment(organization=organization, user=user, sku=pool)
    assignment.disabled_plans = plans
    assignment.source = LicenseAssignment.Source.PORTAL
    assignment.bulk_job = None
    _queue(organization, [assignment], State.PENDING, actor, requested_by)
    audit_record(actor=actor, action="license.assign_requested", organization=organization, target=assignment,
                 metadata={"sku": str(pool.sku_id)})
    return assignment


@transaction.atomic
def license_unassign(
    *, organization, assignment: LicenseAssignment, actor: Actor, requested_by=None
) -> LicenseAssignment:
    """Queue the removal. The seat stays held until Microsoft confirms, so it cannot be double-booked meanwhile."""
    assignment = LicenseAssignment.objects.for_org(organization).select_for_update().get(pk=assignment.pk)
    if assignment.state in (State.REMOVING, State.REMOVED, State.FAILED):
        return assignment
    if assignment.state in (State.PENDING, State.HANDING_OVER):
        raise AssignmentRefused("in_progress", "The license is still being assigned or moved.",
                                "Wait a moment and retry.")
    _queue(organization, [assignment], State.REMOVING, actor, requested_by)
    audit_record(actor=actor, action="license.unassign_requested", organization=organization, target=assignment,
                 metadata={"sku": str(assignment.sku.sku_id)})
    return assignment


def _queue(organization, assignments: list[LicenseAssignment], state: str, actor: Actor, requested_by=None,
           bulk_job: BulkJob | None = None) -> list[ProvisioningOperation]:
    """Move assignments to ``state`` and write one outbox operation per ``OPERATION_SIZE`` of them, in the
    caller's transaction."""
    operations = []
    for start in range(0, len(assignments), OPERATION_SIZE):
        chunk = assignments[start:start + OPERATION_SIZE]
        for a in chunk:
            a.state = state
            a.error_code = a.error_message = a.fix_hint = ""
            if requested_by is not None:
                a.requested_by = requested_by
            if bulk_job is not None:
                a.bulk_job = bulk_job
        # The primary keys exist before the insert (UUIDs), so the operation can be written first
        # and new rows inserted complete: bulk_update costs ~4 ms a row (a CASE per field and row).
        operation = operation_enqueue(
            organization=organization, kind=OPERATION_KIND, actor=actor,
            payload={"assignment_ids": [str(a.pk) for a in chunk]}, target=bulk_job or chunk[0],
        )
        for a in chunk:
            a.operation = operation
        new_rows = [a for a in chunk if a._state.adding]
        existing = [a for a in chunk if not a._state.adding]
        if new_rows:
            _insert_new(new_rows)
        if existing:
            LicenseAssignment.objects.bulk_update(
                existing, ["state", "error_code", "error_message", "fix_hint", "requested_by", "bulk_job",
                           "operation", "disabled_plans", "source", "updated_at"],
            )
        operations.append(operation)
    return operations


# What a new assignment inserts, read off its instance; the timestamps are stamped by _insert_new.
_ASSIGNMENT_ATTNAMES = [field.attname for field in LicenseAssignment._meta.concrete_fields]


def _insert_new(assignments: list[LicenseAssignment]) -> None:
    """``bulk_create`` for new assignments, as one JSON parameter (``core.fields.encrypted_bulk_insert``):
    Django prepared each of a hundred rows' seventeen values through its field and psycopg parsed the
    statement's placeholders, most of a bulk job's confirmation in a profile. The instances end as
    bulk_create leaves them: stamped, and saved (a later ``save()`` updates)."""
    now = timezone.now()
    for assignment in assignments:
        assignment.created_at = assignment.updated_at = now
    encrypted_bulk_insert(LicenseAssignment, [{name: getattr(a, name) for name in _ASSIGNMENT_ATTNAMES}
                                              for a in assignments])
    for assignment in assignments:
        assignment._state.adding, assignment._state.db = False, DEFAULT_DB_ALIAS


# --- the outbox handler ----------------------------------------------------------------------------------


def _release_unfinished(operation: ProvisioningOperation) -> None:
    """The operation failed for good: free the seats it was still holding and say why, per user."""
    reason = operation.failure_reason or "Microsoft did not accept the change."
    rows = LicenseAssignment.objects.for_org(operation.organization_id).filter(
        operation=operation, state__in=[State.PENDING, State.REMOVING]
    )
    for assignment in rows:
        done = (operation.checkpoint or {}).get("done", {}).get(str(assignment.pk))
        if done is not None:
            _apply_result(assignment, done)
            continue
        if assignment.state == State.PENDING:
            assignment.state = State.FAILED
        else:
            assignment.state = State.ASSIGNED
        assignment.error_code = (operation.last_error_code or "failed")[:64]
        assignment.error_message = reason[:500]
        assignment.fix_hint = "Try again later; if it keeps failing, contact support."
        assignment.save()
    _refresh_jobs_of(operation)


# Of each user, the handler sends the object id (decrypted with the row's organisation and id): the other
# columns, six ciphertexts and four timestamps, were read and parsed for nothing, a tenth of an operation.
_USER_FIELDS_NOT_SENT = [
    f"user__{field.name}" for field in DirectoryUser._meta.concrete_fields
    if field.name not in ("id", "organization", "graph_id")
]


@register_operation(OPERATION_KIND, on_failure=_release_unfinished, max_attempts=8)
def license_changes_apply(operation: ProvisioningOperation) -> dict:
    """Send this batch's assign/unassign calls in one Graph $batch and record each user's outcome."""
    organization = operation.organization
    ids = operation.payload.get("assignment_ids", [])
    rows = list(
        LicenseAssignment.objects.for_org(organization)
        .select_for_update()
        .select_related("user")
        .defer(*_USER_FIELDS_NOT_SENT)
        .filter(pk__in=ids, operation=operation, state__in=[State.PENDING, State.REMOVING])
        .order_by("pk")
    )
    # The seat pools once each, not joined to every row: a pool's service-plan list is JSON that was
    # decoded again for each of the hundred assignments (a fifth of an operation's own time).
    pools = TenantSku.objects.for_org(organization).in_bulk({a.sku_id for a in rows})
    for assignment in rows:
        assignment.sku = pools[assignment.sku_id]
    done: dict = dict((operation.checkpoint or {}).get("done", {}))
    # Restricted after this was queued (GDPR Art. 18): assigning would send the person's data to
    # Microsoft, so it fails instead; a removal stops processing and goes ahead.
    restricted = restricted_object_ids(
        organization, DirectoryUser, {a.user_id for a in rows if a.state == State.PENDING and str(a.pk) not in done}
    )
    for assignment in rows:
        if assignment.state == State.PENDING and str(assignment.user_id) in restricted:
            done[str(assignment.pk)] = {"ok": False, "code": "restricted", "message": RESTRICTED_MESSAGE,
                                        "fix": RESTRICTED_FIX}
    to_send = [a for a in rows if str(a.pk) not in done]
    retry_error = None
    if to_send:
        requests = [_batch_request(a) for a in to_send]
        results = graph_for(organization).batch(
            requests, request_id=str(operation.ms_request_id),
            subject_ids=[a.user_id for a in to_send if a.state == State.PENDING],
        )
        by_id = {str(r.key): r for r in results}
        for assignment in to_send:
            outcome = _outcome(assignment, by_id.get(str(assignment.pk)))
            if outcome.get("retry"):
                retry_error = outcome["error"]
                continue
            done[str(assignment.pk)] = outcome
        operation.checkpoint = {**(operation.checkpoint or {}), "done": done}
    if retry_error is not None:
        # Answered items are in the checkpoint (saved by the executor with the attempt); only the rest is re-sent.
        raise retry_error
    summary = _apply_results(organization, [(a, done[str(a.pk)]) for a in rows if str(a.pk) in done])
    _refresh_jobs_of(operation)
    return summary


def _batch_request(assignment: LicenseAssignment) -> dict:
    sku_id = str(assignment.sku.sku_id)
    if assignment.state == State.PENDING:
        body = {"addLicenses": [{"skuId": sku_id, "disabledPlans": list(assignment.disabled_plans)}],
                "removeLicenses": []}
    else:
        body = {"addLicenses": [], "removeLicenses": [sku_id]}
    return {
        "id": str(assignment.pk), "method": "POST", "url": f"/users/{assignment.user.graph_id}/assignLicense",
        "headers": {"Content-Type": "application/json"}, "body": body,
    }


def _outcome(assignment: LicenseAssignment, result: BatchItemResult | None) -> dict:
    """Turn a $batch item into a stored outcome; {"retry": True, ...} when it should be sent again."""
    if result is None:
        return {"retry": True, "error": ms.TransientFailure("Graph did not answer this item of the batch.")}
    if result.ok:
        return {"ok": True}
    error = result.error
    if getattr(error, "retryable", False):
        return {"retry": True, "error": error}
    message = (getattr(error, "message", "") or str(error)).lower()
    if assignment.state == State.REMOVING and (
        isinstance(error, ms.NotFound) or "does not have a corresponding license" in message
    ):
        return {"ok": True}
    explanation = explain(error)
    return {"ok": False, "code": explanation.code, "message": explanation.message, "fix": explanation.fix_hint}


def _apply_results(organization, answered: list[tuple[LicenseAssignment, dict]]) -> dict[str, int]:
    """Record a batch's outcomes: one UPDATE per distinct outcome (all assigned, say), not one per user."""
    summary = {"assigned": 0, "removed": 0, "failed": 0}
    groups: dict[tuple, list] = {}
    now = timezone.now()
    for assignment, outcome in answered:
        result = _apply_result(assignment, outcome, now=now, save=False)
        summary[result] += 1
        values = tuple((name, getattr(assignment, name)) for name in _RESULT_FIELDS)
        groups.setdefault(values, []).append(assignment.pk)
    for values, pks in groups.items():
        LicenseAssignment.objects.for_org(organization).filter(pk__in=pks).update(**dict(values), updated_at=now)
    return summary


_RESULT_FIELDS = ("state", "assigned_at", "removed_at", "error_code", "error_message", "fix_hint")


def _apply_result(assignment: LicenseAssignment, outcome: dict, *, now=None, save: bool = True) -> str:
    now = now or timezone.now()
    removing = assignment.state == State.REMOVING
    if outcome.get("ok"):
        assignment.state = State.REMOVED if removing else State.ASSIGNED
        if removing:
            assignment.removed_at = now
        else:
            assignment.assigned_at, assignment.removed_at = now, None
        assignment.error_code = assignment.error_message = assignment.fix_hint = ""
        result = "removed" if removing else "assigned"
    else:
        # A refused removal leaves the license where it was; a refused assignment frees the seat.
        assignment.state = State.ASSIGNED if removing else State.FAILED
        assignment.error_code = outcome.get("code", "")[:64]
        assignment.error_message = outcome.get("message", "")[:500]
        assignment.fix_hint = outcome.get("fix", "")[:300]
        result = "failed"
    if save:
        assignment.save()
    return result


def _refresh_jobs_of(operation: ProvisioningOperation) -> None:
    job_ids = set(
        LicenseAssignment.objects.for_org(operation.organization_id)
        .filter(operation=operation, bulk_job__isnull=False)
        .values_list("bulk_job_id", flat=True)
    )
    for job_id in sorted(job_ids, key=str):
        bulk_job_record_progress(organization=operation.organization_id, job_id=job_id)


def bulk_job_record_progress(*, organization, job_id) -> BulkJob:
    """Counts from the assignments themselves (the truth); the job ends, audited, once nothing is in flight.

    Called by the outbox handler (and its failure hook) after it records a batch's results, in the
    same transaction. The job row is locked first, so of two batches finishing at once the second
    counts after the first has committed and sees the job's last assignment settle: a running job
    completes without anyone looking at it.
    """
    job = BulkJob.objects.for_org(organization).select_for_update().get(pk=job_id)
    if job.status != BulkJob.Status.RUNNING:
        return job
    counts = LicenseAssignment.objects.for_org(organization).filter(bulk_job=job).aggregate(
        in_flight=Count("pk", filter=Q(state__in=[State.PENDING, State.REMOVING])),
        failed=Count("pk", filter=Q(state=State.FAILED) | Q(~Q(error_code=""), state=State.ASSIGNED)),
        total=Count("pk"),
    )
    job.failed = counts["failed"]
    job.succeeded = counts["total"] - counts["in_flight"] - counts["failed"]
    fields = ["succeeded", "failed", "updated_at"]
    if counts["in_flight"] == 0:
        job.status = BulkJob.Status.COMPLETED_WITH_ERRORS if job.failed else BulkJob.Status.COMPLETED
        job.finished_at = timezone.now()
        fields += ["status", "finished_at"]
    job.save(update_fields=fields)
    if counts["in_flight"] == 0:
        audit_record(actor=Actor.system("provisioning"), action="license.bulk_completed",
                     organization=organization, target=job,
                     metadata={"status": job.status, "succeeded": job.succeeded, "failed": job.failed})
    return job
