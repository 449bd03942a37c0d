"""A seat reduction that releases chosen users' licenses first (decision 011).

The reduction service queues the chosen unassignments, then the ``subscription.set_quantity``
operation with ``after_operations`` and ``released`` in its payload. Its handler calls
:func:`await_releases` (wait while the unassignments run; refuse, naming who and why, if any chosen
license was not removed) and :func:`recheck_seats` (the invariant again, under the pool lock) before
Partner Center is asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.utils import timezone

from licensing import nce
from licensing.models import LicenseAssignment, ProvisioningOperation, Subscription
from licensing.provisioning import OperationInProgress, OperationRefused, operation_milestone

from ..seats import seat_pool_shortfall


def releasable(subscription: Subscription, pool, release: Sequence) -> list[LicenseAssignment]:
    """The chosen assignments of the subscription's pool, locked; each must hold an assigned license."""
    wanted = {str(pk) for pk in release}
    if pool is None:
        raise ValidationError("This subscription's licenses are not in the tenant yet: sync the directory first.")
    rows = list(
        LicenseAssignment.objects.for_org(subscription.organization_id).select_for_update()
        .select_related("user", "sku").filter(sku=pool, pk__in=list(wanted)).order_by("pk")
    )
    if len(rows) != len(wanted):
        raise ValidationError("Some of the chosen users do not hold this license (any more). Reload the page.")
    busy = [str(a.user) for a in rows if a.state != LicenseAssignment.State.ASSIGNED]
    if busy:
        raise nce.RuleViolation(
            f"A license change is already in progress for {', '.join(busy)}. Wait for it to finish, then try again.",
            code="change_in_progress",
        )
    return rows



RELEASE_POLL_SECONDS = 15


def await_releases(operation: ProvisioningOperation) -> None:
    """A reduction that releases licenses first: wait for their unassignments, and refuse, naming who and
    why, if any of them was not removed. Nothing has been sent to Partner Center at that point."""
    after = operation.payload.get("after_operations") or []
    if not after:
        return
    organization = operation.organization_id
    waiting = list(ProvisioningOperation.objects.for_org(organization).filter(pk__in=after).exclude(
        status__in=ProvisioningOperation.TERMINAL
    ).values_list("next_attempt_at", flat=True))
    if waiting:
        # Look again when the slowest unassignment is next tried (it may be backing off from throttling),
        # so the wait costs a poll per attempt of theirs rather than one every few seconds.
        now = timezone.now()
        due = max((at for at in waiting if at is not None), default=now)
        retry_in = max(RELEASE_POLL_SECONDS, (due - now).total_seconds() + RELEASE_POLL_SECONDS)
        raise OperationInProgress("Waiting for the licenses to be unassigned.", retry_in=retry_in)
    kept = list(
        LicenseAssignment.objects.for_org(organization).select_related("user")
        .filter(pk__in=operation.payload.get("released") or []).exclude(state=LicenseAssignment.State.REMOVED)
    )
    if kept:
        why = "; ".join(f"{a.user}: {a.error_message or 'Microsoft did not confirm the removal.'}" for a in kept)
        raise OperationRefused(
            f"The seats were not reduced, because Microsoft did not remove every license chosen for release "
            f"({why}). The other chosen licenses were removed; choose again and retry.",
            code="release_failed",
        )
    operation_milestone(operation, "licenses_released")


def recheck_seats(operation: ProvisioningOperation, subscription: Subscription, quantity: int, *,
                  verb: str = "reducing to", outcome: str = "The seats were not reduced.") -> None:
    """Under the pool lock again, just before Microsoft is asked: the licenses held must still fit."""
    if quantity >= subscription.quantity or operation.payload.get("seat_check_overridden"):
        return
    shortfall = seat_pool_shortfall(subscription=subscription, new_quantity=quantity, lock=True,
                                    exclude_operation=operation)
    if shortfall is not None and shortfall.short:
        raise OperationRefused(f"{shortfall.refusal(verb)} {outcome}", code="seats_assigned")
