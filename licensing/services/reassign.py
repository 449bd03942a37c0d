"""Reassign a license in one step: a seat moves from a leaver to a joiner.

In the portal's ledger the seat has exactly one holder at every committed moment. Under the seat
pool's row lock (``assignments.lock_seat_pools``), one transaction turns the leaver's assignment into
``handover`` (not seat-holding) and the joiner's into ``pending`` (seat-holding), and writes one outbox
operation: the count of seats in use does not change, so a full pool can still be reassigned, and no
concurrent assignment can take the seat in between.

Microsoft has no "move" call: assignLicense changes one user at a time. The handler makes the two calls
in the order that works when the pool is full, each under its own stable request id derived from the
operation's, with the progress in the operation's checkpoint so a retry resumes where it stopped:

1. remove the license from the leaver (a license already gone counts as removed);
2. add it to the joiner, with the leaver's disabled service plans;
3. only if Microsoft refuses step 2 for good: give it back to the leaver, so nobody loses access.

The gap between steps 1 and 2 is one worker's two consecutive Graph calls. Outcomes:
- done: the joiner holds it (``assigned``), the leaver not (``removed``); the operation succeeds;
- step 1 refused: nothing changed; the leaver keeps it, the joiner's row says why (``failed``);
- step 2 refused: the leaver has it back and the joiner's row says why; if even step 3 is refused
  (someone outside the portal took the seat meanwhile) both rows say so and a directory sync shows
  the tenant's truth;
- a refusal fails the operation (so the customer is notified) and, like exhausted retries, leaves the
  failure hook to settle the rows from the checkpoint.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from licensing.microsoft import errors as ms
from licensing.microsoft.resources import BatchItemResult
from licensing.models import DirectoryUser, LicenseAssignment, ProvisioningOperation
from licensing.provisioning import OperationRefused, operation_enqueue, register_operation
from licensing.refusals import explain_assignment_error as explain

from .assignments import AssignmentRefused, lock_seat_pools, refuse_if_unassignable
from .directory import graph_for

OPERATION_KIND = "license.reassign"
State = LicenseAssignment.State


@transaction.atomic
def license_reassign(
    *, organization, assignment: LicenseAssignment, to_user: DirectoryUser, actor: Actor, requested_by=None,
) -> LicenseAssignment:
    """Move ``assignment``'s seat to ``to_user``; returns the joiner's assignment (``pending``)."""
    pool = lock_seat_pools(organization, [assignment.sku_id])[assignment.sku_id]
    leaver = LicenseAssignment.objects.for_org(organization).select_for_update().select_related("user").get(
        pk=assignment.pk)
    if leaver.state != State.ASSIGNED:
        raise AssignmentRefused("not_assigned", f"{leaver.user} does not hold {pool.label} right now "
                                f"({leaver.get_state_display().lower()}).", "Wait until it is assigned, or refresh.")
    to_user = DirectoryUser.objects.for_org(organization).get(pk=to_user.pk)
    if to_user.pk == leaver.user_id:
        raise AssignmentRefused("same_user", "Choose another user to give the license to.")
    refuse_if_unassignable(to_user)
    joiner = (
        LicenseAssignment.objects.for_org(organization).select_for_update().filter(user=to_user, sku=pool).first()
    )
    if joiner is not None and (joiner.holds_seat or joiner.state == State.HANDING_OVER):
        raise AssignmentRefused("already_assigned", f"{to_user} already has {pool.label}.",
                                "Choose a user without this license.")
    joiner = joiner or LicenseAssignment(organization=organization, user=to_user, sku=pool)
    joiner.state = State.PENDING
    joiner.disabled_plans = list(leaver.disabled_plans)
    joiner.source = LicenseAssignment.Source.PORTAL
    joiner.bulk_job = None
    joiner.error_code = joiner.error_message = joiner.fix_hint = ""
    joiner.requested_by = requested_by
    operation = operation_enqueue(
        organization=organization, kind=OPERATION_KIND, actor=actor, target=joiner,
        payload={"from_assignment": str(leaver.pk), "to_assignment": str(joiner.pk)},
    )
    joiner.operation = leaver.operation = operation
    leaver.state = State.HANDING_OVER
    leaver.error_code = leaver.error_message = leaver.fix_hint = ""
    leaver.requested_by = requested_by or leaver.requested_by
    joiner.full_clean(validate_unique=False, validate_constraints=False)
    joiner.save()
    leaver.save()
    audit_record(actor=actor, action="license.reassign_requested", organization=organization, target=joiner,
                 metadata={"sku": str(pool.sku_id), "from_assignment": str(leaver.pk)})
    return joiner


# --- the outbox handler -------------------------------------------------------------------------------


def _step_id(operation: ProvisioningOperation, step: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"msrequest:{operation.ms_request_id}/reassign-{step}"))


def _call(organization, operation, step: str, assignment: LicenseAssignment, *, add: bool) -> BatchItemResult:
    sku_id = str(assignment.sku.sku_id)
    body = ({"addLicenses": [{"skuId": sku_id, "disabledPlans": list(assignment.disabled_plans)}],
             "removeLicenses": []} if add else {"addLicenses": [], "removeLicenses": [sku_id]})
    request = {"id": step, "method": "POST", "url": f"/users/{assignment.user.graph_id}/assignLicense",
               "headers": {"Content-Type": "application/json"}, "body": body}
    return graph_for(organization).batch([request], request_id=_step_id(operation, step))[0]


def _outcome(result: BatchItemResult, *, removing: bool) -> dict:
    """{"ok": True} / {"ok": False, code, message, fix}; raises the error when it is worth retrying."""
    if result.ok:
        return {"ok": True}
    error = result.error or ms.TransientFailure("Graph did not answer.")
    if getattr(error, "retryable", False) or isinstance(error, ms.TransientFailure):
        raise error
    message = (getattr(error, "message", "") or str(error)).lower()
    if removing and (isinstance(error, ms.NotFound) or "does not have a corresponding license" in message):
        return {"ok": True}
    explanation = explain(error)
    return {"ok": False, "code": explanation.code, "message": explanation.message, "fix": explanation.fix_hint}


def _rows(operation: ProvisioningOperation):
    ids = [operation.payload.get("from_assignment"), operation.payload.get("to_assignment")]
    rows = {
        str(a.pk): a for a in LicenseAssignment.objects.for_org(operation.organization_id).select_for_update()
        .select_related("user", "sku").filter(pk__in=ids, operation=operation).order_by("pk")
    }
    return rows.get(ids[0]), rows.get(ids[1])


def _settle(leaver, joiner, steps: dict, reason: dict | None = None) -> str:
    """Write the final states from what Microsoft did (``steps``) and return the outcome's name."""
    now = timezone.now()
    removed, added = steps.get("remove", {}).get("ok"), steps.get("add", {}).get("ok")
    restored = steps.get("restore", {}).get("ok")
    failure = next((steps[s] for s in ("add", "remove") if s in steps and not steps[s].get("ok")), None) or reason or {}

    def fail(row, prefix=""):
        row.state = State.FAILED
        row.error_code = failure.get("code", "failed")[:64]
        row.error_message = (prefix + failure.get("message", "Microsoft did not accept the change."))[:500]
        row.fix_hint = failure.get("fix", "")[:300]

    if removed and added:
        outcome = "moved"
        if joiner:
            joiner.state, joiner.assigned_at, joiner.removed_at = State.ASSIGNED, now, None
        if leaver:
            leaver.state, leaver.removed_at = State.REMOVED, now
    elif not removed or restored:
        outcome = "kept"
        if leaver:
            leaver.state = State.ASSIGNED
            if restored:
                leaver.assigned_at = now
        if joiner:
            fail(joiner, "The license stayed with the previous user: ")
    else:
        outcome = "lost"
        if leaver:
            leaver.state, leaver.removed_at = State.REMOVED, now
            leaver.error_code = "reassign_incomplete"
            leaver.error_message = "Removed from this user, but Microsoft did not give it to the new user."
            leaver.fix_hint = "Assign the license again; sync the directory to see the tenant's state."
        if joiner:
            fail(joiner, "Removed from the previous user, but not given to this one: ")
    for row in (leaver, joiner):
        if row is not None:
            row.save()
    return outcome


def _reassign_unfinished(operation: ProvisioningOperation) -> None:
    """Retries ran out: settle the rows from the checkpoint, using the operation's reason for what is left."""
    leaver, joiner = _rows(operation)
    reason = {"code": (operation.last_error_code or "failed"), "message": operation.failure_reason
              or "Microsoft did not answer in time.", "fix": "Try again later."}
    _settle(leaver, joiner, dict((operation.checkpoint or {}).get("steps", {})), reason)


@register_operation(OPERATION_KIND, on_failure=_reassign_unfinished, max_attempts=8)
def license_reassign_apply(operation: ProvisioningOperation) -> dict:
    organization = operation.organization
    leaver, joiner = _rows(operation)
    if leaver is None or joiner is None:
        return {"outcome": "superseded"}
    steps: dict = dict((operation.checkpoint or {}).get("steps", {}))

    def run(step: str, row: LicenseAssignment, *, add: bool) -> dict:
        if step not in steps:
            try:
                steps[step] = _outcome(_call(organization, operation, step, row, add=add), removing=not add)
            finally:
                operation.checkpoint = {**(operation.checkpoint or {}), "steps": dict(steps)}
        return steps[step]

    if run("remove", leaver, add=False)["ok"] and not run("add", joiner, add=True)["ok"]:
        run("restore", leaver, add=True)
    if steps["remove"]["ok"] and steps["add"]["ok"]:
        return {"outcome": _settle(leaver, joiner, steps)}
    # Refused: the operation fails visibly (the customer is told), and the failure hook settles the rows
    # from the checkpoint, after this transaction's writes are rolled back.
    refused = steps["add"] if steps["remove"]["ok"] else steps["remove"]
    raise OperationRefused(refused.get("message") or "Microsoft did not accept the change.",
                           code=str(refused.get("code") or "refused")[:64])
