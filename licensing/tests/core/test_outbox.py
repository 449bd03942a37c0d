"""The provisioning outbox: state machine, retries, idempotency, redelivery safety and the sweeper."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.tests.factories import MembershipFactory, OrganizationFactory
from core.audit import Actor
from core.models import AuditEvent
from core.tenancy import tenant_context
from licensing.microsoft.errors import InvalidRequest, Throttled
from licensing.models import ProvisioningAttempt, ProvisioningOperation
from licensing.provisioning import (
    OperationInProgress,
    operation_enqueue,
    operation_execute,
    operation_mark_failed,
    operation_retry,
    operation_sweep,
    register_operation,
)

pytestmark = pytest.mark.django_db
Status = ProvisioningOperation.Status

calls: list[dict] = []
script: list = []  # what the next runs do: an exception to raise, or a result


def _next():
    step = script.pop(0) if script else {"ok": True}
    if isinstance(step, Exception):
        raise step
    return step


@register_operation("test.scripted", on_failure=lambda op: calls.append({"failed": str(op.pk)}))
def _scripted(operation):
    calls.append({"request_id": str(operation.ms_request_id), "attempt": operation.attempts})
    operation.checkpoint["seen"] = operation.checkpoint.get("seen", 0) + 1
    return _next()


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()
    script.clear()


@pytest.fixture
def org():
    return OrganizationFactory()


def enqueue(org, **kwargs) -> ProvisioningOperation:
    with tenant_context(org):
        return operation_enqueue(organization=org, kind="test.scripted", payload={"x": 1},
                                 actor=Actor.system("test"), **kwargs)


def load(op) -> ProvisioningOperation:
    with tenant_context(op.organization_id):
        return ProvisioningOperation.objects.get(pk=op.pk)


def attempts(op) -> list[ProvisioningAttempt]:
    with tenant_context(op.organization_id):
        return list(ProvisioningAttempt.objects.filter(operation_id=op.pk).order_by("number"))


def test_enqueue_dispatches_after_commit_and_succeeds(org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        op = enqueue(org)
        assert load(op).status == Status.PENDING and not calls  # nothing runs before commit
    assert len(callbacks) >= 1
    op = load(op)
    assert op.status == Status.SUCCEEDED and op.result == {"ok": True}
    assert "submitted" in op.milestones and op.checkpoint == {"seen": 1}
    assert [a.outcome for a in attempts(op)] == [ProvisioningAttempt.Outcome.SUCCEEDED]
    with tenant_context(org):
        assert AuditEvent.objects.filter(action="provisioning.succeeded", target_id=str(op.pk)).exists()


def test_idempotency_key_returns_the_first_operation(org):
    first = enqueue(org, idempotency_key="order:1")
    second = enqueue(org, idempotency_key="order:1")
    assert first.pk == second.pk
    with tenant_context(org):
        assert ProvisioningOperation.objects.count() == 1


def test_transient_errors_retry_with_the_same_request_id_then_die(org, django_capture_on_commit_callbacks):
    script.extend([Throttled("slow down", retry_after=3)] * 10)
    with django_capture_on_commit_callbacks(execute=True):
        op = enqueue(org)
    op = load(op)
    assert op.status == Status.DEAD and op.attempts == op.max_attempts == 5
    assert len({c["request_id"] for c in calls if "request_id" in c}) == 1  # MS-RequestId reused
    outcomes = [a.outcome for a in attempts(op)]
    assert outcomes == [ProvisioningAttempt.Outcome.RETRY] * 4 + [ProvisioningAttempt.Outcome.FAILED]
    assert attempts(op)[0].retry_after_seconds == 3
    assert {"failed": str(op.pk)} in calls  # the failure hook ran
    with tenant_context(org):
        assert AuditEvent.objects.filter(action="provisioning.dead", target_id=str(op.pk)).exists()


def test_transient_then_success(org, django_capture_on_commit_callbacks):
    script.extend([Throttled("slow down"), {"done": 1}])
    with django_capture_on_commit_callbacks(execute=True):
        op = enqueue(org)
    op = load(op)
    assert op.status == Status.SUCCEEDED and op.result == {"done": 1} and op.attempts == 2


def test_business_refusal_fails_at_once(org):
    script.append(InvalidRequest("quantity not allowed", code="900275"))
    op = enqueue(org)
    operation_execute(operation_id=op.pk, org_id=org.pk)
    op = load(op)
    assert op.status == Status.FAILED and op.attempts == 1
    assert op.last_error_code == "900275" and "quantity" in op.failure_reason


def test_in_progress_polls_do_not_count_as_failures(org):
    script.extend([OperationInProgress(retry_in=5)] * 7 + [{"ok": True}])
    op = enqueue(org)
    for _ in range(8):
        operation_execute(operation_id=op.pk, org_id=org.pk)
    op = load(op)
    assert op.status == Status.SUCCEEDED and op.polls == 7 and op.attempts == 8
    assert op.checkpoint == {"seen": 8}  # kept across runs


def test_redelivered_task_does_not_run_a_running_or_finished_operation(org):
    op = enqueue(org)
    with tenant_context(org):
        ProvisioningOperation.objects.filter(pk=op.pk).update(
            status=Status.RUNNING, attempts=1, lease_expires_at=timezone.now() + timedelta(minutes=5)
        )
    assert operation_execute(operation_id=op.pk, org_id=org.pk) is None
    assert calls == []
    with tenant_context(org):
        ProvisioningOperation.objects.filter(pk=op.pk).update(status=Status.SUCCEEDED)
    assert operation_execute(operation_id=op.pk, org_id=org.pk) is None
    assert calls == []


def test_another_organisations_id_does_nothing(org):
    op = enqueue(org)
    other = OrganizationFactory()
    assert operation_execute(operation_id=op.pk, org_id=other.pk) is None
    assert load(op).status == Status.PENDING and calls == []


def test_sweeper_recovers_lost_dispatch_and_dead_worker(org, django_capture_on_commit_callbacks):
    lost = enqueue(org)  # committed, but the broker never got the message
    crashed = enqueue(org)
    with tenant_context(org):
        ProvisioningOperation.objects.filter(pk=crashed.pk).update(
            status=Status.RUNNING, attempts=1, lease_expires_at=timezone.now() + timedelta(minutes=10)
        )
        ProvisioningAttempt.objects.create(organization=org, operation_id=crashed.pk, number=1,
                                           started_at=timezone.now())
    fresh = enqueue(org)
    assert operation_sweep(stale_after_minutes=10) == 0  # nothing is stale yet
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        with tenant_context(org):
            ProvisioningOperation.objects.filter(pk=fresh.pk).update(updated_at=timezone.now())
        with django_capture_on_commit_callbacks(execute=True):
            assert operation_sweep(stale_after_minutes=10) == 2
    assert load(lost).status == Status.SUCCEEDED
    crashed = load(crashed)
    assert crashed.status == Status.SUCCEEDED
    assert [a.outcome for a in attempts(crashed)] == [ProvisioningAttempt.Outcome.ABANDONED,
                                                      ProvisioningAttempt.Outcome.SUCCEEDED]
    assert load(fresh).status == Status.PENDING


def test_staff_retry_and_mark_failed(org, django_capture_on_commit_callbacks):
    staff = MembershipFactory(organization=org).user
    script.append(InvalidRequest("bad input", code="800002"))
    op = enqueue(org)
    operation_execute(operation_id=op.pk, org_id=org.pk)
    failed = load(op)
    old_request_id = failed.ms_request_id
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org):
        operation_retry(operation=failed, actor=Actor.staff(staff))
    retried = load(op)
    # Microsoft answered "no" to the old id; a new attempt needs a new one or it replays the refusal.
    assert retried.status == Status.SUCCEEDED and retried.ms_request_id != old_request_id

    stuck = enqueue(org)
    with tenant_context(org), pytest.raises(ValueError):
        operation_mark_failed(operation=stuck, actor=Actor.staff(staff), reason=" ")
    with tenant_context(org):
        operation_mark_failed(operation=stuck, actor=Actor.staff(staff), reason="Customer asked to stop")
        assert AuditEvent.objects.filter(action="provisioning.mark_failed", target_id=str(stuck.pk)).exists()
    stuck = load(stuck)
    assert stuck.status == Status.FAILED and stuck.failure_reason == "Customer asked to stop"
    assert {"failed": str(stuck.pk)} in calls
    assert operation_execute(operation_id=stuck.pk, org_id=org.pk) is None
