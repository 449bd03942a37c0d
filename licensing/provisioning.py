"""The provisioning outbox: how anything reaches Microsoft.

A service calls :func:`operation_enqueue` inside its own transaction. The row is
committed together with the service's other writes, and only then is a Celery
task dispatched (``transaction.on_commit``); a broker outage therefore loses
nothing, because :func:`operation_sweep` re-dispatches whatever is left behind.

The executor runs an operation in short transactions:

1. claim: lock the row, move it to ``running`` with a lease and an attempt row;
2. run the handler and record the outcome in one transaction, so the handler's
   local writes (subscriptions created, seats recorded) commit together with
   ``succeeded``, or not at all.

A redelivered task finds the row running under a live lease, or finished, and
does nothing. A worker killed mid-run leaves an expired lease; the sweeper then
re-dispatches and the next claim marks the lost attempt abandoned. Every run
sends the operation's stable ``ms_request_id``, so Microsoft replays its first
answer instead of acting twice.

Handlers are registered per kind with :func:`register_operation`. A handler
takes the operation and returns a JSON-able result; it raises
:class:`OperationInProgress` when Microsoft accepted the work but has not
finished it (poll again later), a non-retryable ``MicrosoftError`` for a
business refusal (the operation fails at once), and anything else for a
transient problem (retried with backoff until ``max_attempts``, then dead).
"""

from __future__ import annotations

import contextvars
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from core.audit import Actor, AuditEvent, audit_record
from core.requestid import bind_log_context, unbind_log_context
from core.tenancy import tenant_context, unscoped_no_tenant
from licensing.microsoft.errors import Conflict, MicrosoftError

from .models import ProvisioningAttempt, ProvisioningOperation
from .refusals import failure_reason
from .services.notifications import notify_provisioning_failed

logger = logging.getLogger("licensing.provisioning")

Status = ProvisioningOperation.Status
Outcome = ProvisioningAttempt.Outcome

# Partner Center conflicts that mean "busy, try again later" rather than "no".
BUSY_CODES = frozenset({"800014", "800060", "800064", "800082", "900278"})


class OperationInProgress(Exception):
    """Microsoft accepted the work and is still doing it: run the operation again in ``retry_in`` seconds."""

    def __init__(self, message: str = "Waiting for Microsoft.", *, retry_in: float = 30):
        super().__init__(message)
        self.retry_in = retry_in


class OperationRefused(Exception):
    """A handler's own finding that the operation cannot succeed (not a Microsoft error): fail at once."""

    def __init__(self, message: str, *, code: str = "refused"):
        super().__init__(message)
        self.code = code
        # Written for the customer already: shown as it is (licensing.refusals).
        self.customer_message = message


Handler = Callable[[ProvisioningOperation], "dict | None"]
FailureHook = Callable[[ProvisioningOperation], None]


@dataclass(frozen=True)
class OperationType:
    kind: str
    run: Handler
    on_failure: FailureHook | None = None
    max_attempts: int | None = None


_registry: dict[str, OperationType] = {}


def register_operation(kind: str, *, on_failure: FailureHook | None = None, max_attempts: int | None = None):
    """Register the handler of an operation kind (``@register_operation("subscription.checkout")``).

    ``on_failure(operation)`` runs in the transaction that marks the operation failed
    or dead (by the executor or by staff): undo local reservations, fail the order.
    """

    def decorator(func: Handler) -> Handler:
        if kind in _registry and _registry[kind].run is not func:
            raise ValueError(f"Provisioning operation kind {kind!r} is registered twice.")
        _registry[kind] = OperationType(kind=kind, run=func, on_failure=on_failure, max_attempts=max_attempts)
        return func

    return decorator


def registered_kinds() -> list[str]:
    return sorted(_registry)


def _setting(name: str, default):
    return getattr(settings, name, default)


def _actor_fields(actor: Actor) -> dict:
    user_id = actor.id if actor.type in (AuditEvent.ActorType.USER, AuditEvent.ActorType.STAFF) else None
    return {"requested_by_id": user_id, "actor_label": f"{actor.type}:{actor.id}"[:100]}


def operation_enqueue(
    *,
    organization,
    kind: str,
    payload: dict,
    actor: Actor,
    target=None,
    idempotency_key: str = "",
) -> ProvisioningOperation:
    """Create the outbox row in the caller's transaction; dispatch it after commit.

    With an ``idempotency_key``, a second call for the same organisation and kind
    returns the first operation (a unique constraint decides, not a prior read).
    """
    if kind not in _registry:
        raise ValueError(f"No handler registered for provisioning operation kind {kind!r}.")
    operation = ProvisioningOperation(
        organization=organization,
        kind=kind,
        payload=payload,
        idempotency_key=idempotency_key,
        target_type=type(target).__name__ if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        max_attempts=_registry[kind].max_attempts or _setting("LICENSING_OPERATION_MAX_ATTEMPTS", 5),
        milestones={"submitted": timezone.now().isoformat()},
        **_actor_fields(actor),
    )
    # The unique constraint decides idempotency (in the database, race-free), not a prior check; the
    # database enforces the keys and the foreign keys too, so validating them here would only add three
    # queries per operation (a bulk job writes one per hundred users).
    operation.full_clean(exclude=["organization", "requested_by"], validate_unique=False, validate_constraints=False)
    if idempotency_key:
        try:
            with transaction.atomic():
                operation.save()
        except IntegrityError:
            return ProvisioningOperation.objects.for_org(organization).get(kind=kind, idempotency_key=idempotency_key)
    else:
        operation.save()
    transaction.on_commit(lambda: operation_dispatch(operation=operation))
    return operation


# In eager mode (tests, one-shot scripts) Celery ignores countdowns and runs a retry inside
# the current call. The depth bound stops an operation that never finishes from recursing
# without end; whatever is left is the sweeper's.
_eager_depth: contextvars.ContextVar[int] = contextvars.ContextVar("provisioning_eager_depth", default=0)
EAGER_MAX_DEPTH = 8


def operation_dispatch(*, operation: ProvisioningOperation, countdown: float | None = None) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER and _eager_depth.get() >= EAGER_MAX_DEPTH:
        return
    kwargs = {"operation_id": str(operation.pk), "org_id": str(operation.organization_id)}
    try:
        execute_operation_task.apply_async(kwargs=kwargs, countdown=countdown)
    except Exception:
        # The row is committed; the sweeper will dispatch it once the broker is back.
        logger.exception("Could not dispatch provisioning operation %s", operation.pk)


def _backoff_seconds(failures: int, retry_after: float | None) -> float:
    base = _setting("LICENSING_OPERATION_BACKOFF_SECONDS", 30)
    cap = _setting("LICENSING_OPERATION_BACKOFF_CAP_SECONDS", 3600)
    delay = random.uniform(base / 2, min(cap, base * 2 ** max(0, failures - 1)))
    return max(delay, retry_after or 0)


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, OperationRefused):
        return False
    if isinstance(exc, MicrosoftError):
        return exc.retryable or (isinstance(exc, Conflict) and exc.code in BUSY_CODES)
    # Our own bugs and database hiccups: retry a few times, then give up visibly.
    return True


def _failures(operation: ProvisioningOperation) -> int:
    return operation.attempts - operation.polls


def _claim(operation_id, org_id) -> tuple[ProvisioningOperation, ProvisioningAttempt] | None:
    now = timezone.now()
    with tenant_context(org_id):
        operation = ProvisioningOperation.objects.select_for_update().filter(pk=operation_id).first()
        if operation is None or operation.is_terminal:
            return None
        if operation.status == Status.RUNNING:
            if operation.lease_expires_at and operation.lease_expires_at > now:
                return None  # Another worker holds it: a redelivered message.
            for lost in ProvisioningAttempt.objects.filter(operation=operation, outcome=Outcome.RUNNING):
                lost.outcome, lost.finished_at = Outcome.ABANDONED, now
                lost.error = "The worker stopped before finishing."
                lost.save(update_fields=["outcome", "finished_at", "error", "updated_at"])
        operation.attempts += 1
        operation.status = Status.RUNNING
        operation.started_at = operation.started_at or now
        operation.lease_expires_at = now + timedelta(seconds=_setting("LICENSING_OPERATION_LEASE_SECONDS", 600))
        operation.next_attempt_at = None
        operation.save(update_fields=["attempts", "status", "started_at", "lease_expires_at", "next_attempt_at",
                                      "updated_at"])
        attempt = ProvisioningAttempt.objects.create(
            organization_id=operation.organization_id, operation=operation, number=operation.attempts,
            started_at=now,
        )
        return operation, attempt


def operation_execute(*, operation_id, org_id) -> ProvisioningOperation | None:
    """Run one attempt of an operation. Safe to call any number of times for the same id."""
    claimed = _claim(operation_id, org_id)
    if claimed is None:
        return None
    operation, attempt = claimed
    log_token = bind_log_context(operation_id=str(operation.pk), operation_kind=operation.kind)
    try:
        return _run_claimed(operation, attempt, org_id)
    finally:
        unbind_log_context(log_token)


def _run_claimed(
    operation: ProvisioningOperation, attempt: ProvisioningAttempt, org_id
) -> ProvisioningOperation | None:
    op_type = _registry.get(operation.kind)
    retry_in: float | None = None
    with tenant_context(org_id):
        result, error = None, None
        try:
            if op_type is None:
                raise OperationRefused(f"No handler for {operation.kind!r}.", code="unknown_kind")
            with transaction.atomic():
                result = op_type.run(operation)
        except OperationInProgress as exc:
            error = exc
        except Exception as exc:
            error = exc
            if not isinstance(exc, MicrosoftError | OperationRefused):
                logger.exception("Provisioning operation %s (%s) raised", operation.pk, operation.kind)
        current = ProvisioningOperation.objects.select_for_update().get(pk=operation.pk)
        if current.attempts != attempt.number or current.status != Status.RUNNING:
            # The lease ran out and another run took over: its outcome wins, ours is discarded.
            transaction.set_rollback(True)
            return None
        now = timezone.now()
        attempt.finished_at = now
        operation.lease_expires_at = None
        if error is None:
            operation.status = Status.SUCCEEDED
            operation.result = result if result is not None else {}
            operation.finished_at = now
            operation.last_error, operation.last_error_code = "", ""
            attempt.outcome = Outcome.SUCCEEDED
            audit_record(actor=Actor.system("provisioning"), action="provisioning.succeeded",
                         organization=operation.organization_id, target=operation,
                         metadata={"kind": operation.kind, "attempt": attempt.number})
        elif isinstance(error, OperationInProgress):
            operation.polls += 1
            attempt.outcome = Outcome.IN_PROGRESS
            attempt.error = str(error)
            if operation.polls > _setting("LICENSING_OPERATION_MAX_POLLS", 60):
                _give_up(operation, attempt, "Microsoft did not finish the operation in time.", "timeout",
                         Status.DEAD)
            else:
                operation.status = Status.PENDING
                retry_in = error.retry_in
                operation.next_attempt_at = now + timedelta(seconds=retry_in)
        else:
            code = getattr(error, "code", "") or type(error).__name__
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            attempt.error, attempt.error_code = message, str(code)[:64]
            attempt.retry_after_seconds = int(getattr(error, "retry_after", None) or 0) or None
            if not _is_transient(error):
                _give_up(operation, attempt, message, code, Status.FAILED, reason=failure_reason(error))
            elif _failures(operation) >= operation.max_attempts:
                _give_up(operation, attempt, message, code, Status.DEAD, reason=failure_reason(error))
            else:
                operation.status = Status.PENDING
                attempt.outcome = Outcome.RETRY
                operation.last_error, operation.last_error_code = message, str(code)[:64]
                retry_in = _backoff_seconds(_failures(operation), getattr(error, "retry_after", None))
                operation.next_attempt_at = now + timedelta(seconds=retry_in)
        attempt.save()
        operation.save()
        if retry_in is not None:
            transaction.on_commit(lambda: _dispatch_nested(operation, retry_in))
    return operation


def _dispatch_nested(operation: ProvisioningOperation, countdown: float) -> None:
    token = _eager_depth.set(_eager_depth.get() + 1)
    try:
        operation_dispatch(operation=operation, countdown=countdown)
    finally:
        _eager_depth.reset(token)


def _give_up(operation, attempt, message: str, code, status: str, *, reason: str | None = None) -> None:
    """``message`` is the raw error for staff (``last_error``); ``reason`` what the customer reads."""
    operation.status = status
    operation.finished_at = timezone.now()
    operation.last_error, operation.last_error_code = message, str(code)[:64]
    operation.failure_reason = (reason or message)[:300]
    attempt.outcome = Outcome.FAILED
    _run_failure_hook(operation)
    audit_record(actor=Actor.system("provisioning"), action=f"provisioning.{status}",
                 organization=operation.organization_id, target=operation,
                 metadata={"kind": operation.kind, "code": str(code)[:64], "attempts": operation.attempts})


def _run_failure_hook(operation: ProvisioningOperation) -> None:
    op_type = _registry.get(operation.kind)
    if op_type is not None and op_type.on_failure is not None:
        op_type.on_failure(operation)
    notify_provisioning_failed(operation)


def operation_milestone(operation: ProvisioningOperation, name: str) -> None:
    """Record a timeline step once (first time wins); saved with the operation's outcome."""
    operation.milestones.setdefault(name, timezone.now().isoformat())


@transaction.atomic
def operation_retry(*, operation: ProvisioningOperation, actor: Actor) -> ProvisioningOperation:
    """Staff (or the customer) ask for another go at a failed or dead operation."""
    operation = ProvisioningOperation.objects.for_org(operation.organization_id).select_for_update().get(
        pk=operation.pk
    )
    if operation.status not in (Status.FAILED, Status.DEAD):
        raise ValueError("Only a failed or dead operation can be retried.")
    previous = operation.status
    if previous == Status.FAILED:
        # Microsoft answered with a refusal: the same MS-RequestId would replay that answer.
        operation.ms_request_id = uuid.uuid4()
    operation.status = Status.PENDING
    operation.max_attempts = _failures(operation) + _setting("LICENSING_OPERATION_MAX_ATTEMPTS", 5)
    operation.finished_at = None
    operation.failure_reason = ""
    operation.next_attempt_at = None
    operation.save()
    audit_record(actor=actor, action="provisioning.retry", organization=operation.organization_id,
                 target=operation, metadata={"kind": operation.kind, "from": previous})
    transaction.on_commit(lambda: operation_dispatch(operation=operation))
    return operation


@transaction.atomic
def operation_mark_failed(*, operation: ProvisioningOperation, actor: Actor, reason: str) -> ProvisioningOperation:
    """Staff stop an operation that will not succeed, with the reason shown to the customer."""
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("A reason is required.")
    operation = ProvisioningOperation.objects.for_org(operation.organization_id).select_for_update().get(
        pk=operation.pk
    )
    if operation.status == Status.SUCCEEDED:
        raise ValueError("A succeeded operation cannot be marked failed.")
    previous = operation.status
    operation.status = Status.FAILED
    operation.finished_at = timezone.now()
    operation.lease_expires_at = None
    operation.failure_reason = reason[:300]
    operation.last_error_code = operation.last_error_code or "marked_failed"
    ProvisioningAttempt.objects.filter(operation=operation, outcome=Outcome.RUNNING).update(
        outcome=Outcome.ABANDONED, finished_at=operation.finished_at
    )
    if previous not in (Status.FAILED, Status.DEAD):
        _run_failure_hook(operation)
    operation.save()
    audit_record(actor=actor, action="provisioning.mark_failed", organization=operation.organization_id,
                 target=operation, metadata={"kind": operation.kind, "from": previous})
    return operation


def operation_sweep(*, stale_after_minutes: int | None = None) -> int:
    """Re-dispatch operations left behind: pending and due but not picked up, or running with a dead lease.

    A system sweep across organisations: it only reads ids, and each run re-enters its tenant.
    """
    minutes = stale_after_minutes if stale_after_minutes is not None else _setting(
        "LICENSING_OPERATION_STALE_MINUTES", 10
    )
    now = timezone.now()
    stale = now - timedelta(minutes=minutes)
    with unscoped_no_tenant():
        rows = list(
            ProvisioningOperation.unscoped_objects.filter(
                Q(status=Status.PENDING, updated_at__lt=stale)
                & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                | Q(status=Status.RUNNING, lease_expires_at__lt=now)
            )
            .order_by("created_at")
            .values_list("pk", "organization_id")[:500]
        )
    for pk, org_id in rows:
        operation_dispatch(operation=ProvisioningOperation(pk=pk, organization_id=org_id))
    if rows:
        logger.info("Provisioning sweeper re-dispatched %d operation(s)", len(rows))
    return len(rows)


@shared_task(name="licensing.provisioning.execute", acks_late=True, reject_on_worker_lost=True)
def execute_operation_task(*, operation_id: str, org_id: str) -> None:
    # org_id, not organization_id: the executor opens its own short tenant transactions
    # instead of running inside the single one TenantTask would wrap around it.
    operation_execute(operation_id=operation_id, org_id=org_id)


def outbox_backlog() -> dict:
    """Across organisations: operations waiting (pending or running) by status, and the oldest one's age.

    For operators (metrics, the staff status page): counts and an age, no tenant's rows.
    """
    with unscoped_no_tenant():
        waiting = ProvisioningOperation.unscoped_objects.filter(status__in=(Status.PENDING, Status.RUNNING))
        counts = dict(waiting.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        oldest = waiting.aggregate(oldest=Min("created_at"))["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return {
        "pending": counts.get(Status.PENDING, 0),
        "running": counts.get(Status.RUNNING, 0),
        "oldest_age_seconds": max(age, 0.0),
    }


def outbox_metrics():
    """Scrape-time metrics for core.metrics (registered in LicensingConfig.ready())."""
    backlog = outbox_backlog()
    depth = GaugeMetricFamily("portal_outbox_depth", "Provisioning operations waiting, by status.", labels=["status"])
    depth.add_metric(["pending"], backlog["pending"])
    depth.add_metric(["running"], backlog["running"])
    yield depth
    yield GaugeMetricFamily(
        "portal_outbox_oldest_age_seconds",
        "Age of the oldest pending or running provisioning operation.",
        value=backlog["oldest_age_seconds"],
    )
