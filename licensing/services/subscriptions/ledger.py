"""The one write path from Partner Center's view of a subscription to ours, with its change ledger.

:func:`subscription_apply_remote` updates the local row, its seat batches (each with its own refund
window) and records a SubscriptionEvent for what changed.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from licensing import nce
from licensing.microsoft.resources import Subscription as RemoteSubscription
from licensing.microsoft.resources import parse_datetime
from licensing.models import (
    ProvisioningOperation,
    SeatBatch,
    Subscription,
    SubscriptionEvent,
)

Status = Subscription.Status
TRACKED_FIELDS = ("status", "quantity", "auto_renew", "term_duration", "billing_cycle", "commitment_end",
                  "cancellation_allowed_until", "scheduled_next_term")


def _snapshot(subscription: Subscription) -> dict:
    out = {}
    for name in TRACKED_FIELDS:
        value = getattr(subscription, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _record_event(subscription, action: str, before: dict, *, actor_label: str, actor_user_id=None, operation=None,
                  note: str = "") -> SubscriptionEvent | None:
    after = _snapshot(subscription)
    changed_before = {k: v for k, v in before.items() if after.get(k) != v}
    changed_after = {k: after[k] for k in changed_before}
    if not changed_before and action.startswith("reconcile"):
        return None
    return SubscriptionEvent.objects.create(
        organization_id=subscription.organization_id, subscription=subscription, action=action,
        before=changed_before, after=changed_after, actor_label=actor_label[:100], actor_user_id=actor_user_id,
        operation=operation, note=note[:300],
    )


def _status_from_remote(value: str) -> str:
    value = (value or "").lower()
    return value if value in Status.values else Status.PENDING


def _scheduled_from_remote(raw: dict) -> dict | None:
    instructions = raw.get("scheduledNextTermInstructions")
    if not instructions:
        return None
    product = instructions.get("product") or {}
    catalog_item_id = ":".join(x for x in (product.get("productId"), product.get("skuId"),
                                            product.get("availabilityId")) if x)
    return {
        "quantity": instructions.get("quantity"),
        "term_duration": product.get("termDuration", ""),
        "billing_cycle": (product.get("billingCycle") or "").lower(),
        "catalog_item_id": catalog_item_id,
    }


def _sync_batches(subscription: Subscription, remote: RemoteSubscription, now, *, previous_quantity: int) -> None:
    """Mirror Partner Center's refundable seat batches; batches whose window closed stay as history.

    Partner Center lists only the batches still refundable, with how many of their seats are. A batch
    it stops listing either had its seats removed or simply left its window (Microsoft's clock, or an
    early close): only a drop in the subscription's quantity counts as removed seats, the rest of the
    batch stays paid for and its window is recorded as closed.
    """
    details = ((remote.raw.get("refundableQuantity") or {}).get("details")) or []
    open_batches = list(subscription.seat_batches.filter(refundable_until__gt=now).order_by("added_at"))
    remote_windows = []
    for detail in details:
        until = parse_datetime(detail.get("allowedUntilDateTime"))
        if until is not None:
            remote_windows.append((until, int(detail.get("quantity", 0))))
    # Seats that left the subscription and are not yet attributed to a batch.
    unaccounted = max(0, previous_quantity - subscription.quantity)
    for until, quantity in remote_windows:
        match = next((b for b in open_batches if abs((b.refundable_until - until).total_seconds()) < 120), None)
        if match is None:
            has_history = subscription.seat_batches.exists()
            SeatBatch.objects.create(
                organization_id=subscription.organization_id, subscription=subscription,
                source=SeatBatch.Source.ADDITION if has_history else SeatBatch.Source.PURCHASE,
                quantity=quantity, added_at=until - nce.REFUND_WINDOW, refundable_until=until,
            )
        else:
            open_batches.remove(match)
            if quantity > match.quantity:
                match.quantity, match.refunded = quantity, 0
                match.save(update_fields=["quantity", "refunded", "updated_at"])
            elif match.remaining != quantity:
                newly_removed = max(0, match.remaining - quantity)
                match.refunded = match.quantity - quantity
                unaccounted = max(0, unaccounted - newly_removed)
                match.save(update_fields=["quantity", "refunded", "updated_at"])
    for leftover in sorted(open_batches, key=lambda b: b.added_at, reverse=True):
        # Removals come off the newest batches first (nce.take_from_batches); the rest only lost its window.
        removed = min(unaccounted, leftover.remaining)
        unaccounted -= removed
        leftover.refunded += removed
        leftover.refundable_until = min(leftover.refundable_until, now)
        leftover.save(update_fields=["refunded", "refundable_until", "updated_at"])
    if not subscription.seat_batches.exists() and subscription.quantity and subscription.start_date:
        SeatBatch.objects.create(
            organization_id=subscription.organization_id, subscription=subscription, source=SeatBatch.Source.PURCHASE,
            quantity=subscription.quantity, added_at=subscription.start_date,
            refundable_until=nce.refund_window_end(subscription.start_date),
        )


def subscription_apply_remote(
    *, subscription: Subscription, remote: RemoteSubscription, action: str, actor_label: str,
    actor_user_id=None, operation: ProvisioningOperation | None = None,
) -> Subscription:
    """Make the local row say what Partner Center says, and write the change to the ledger.

    ``actor_user_id``, not the user: the person who asked may have left the organisation since, and row-level
    security on users (decision 043) would hide their row from a read; the ledger keeps their id all the same.
    """
    now = timezone.now()
    before = _snapshot(subscription)
    subscription.ms_subscription_id = remote.id
    subscription.ms_order_id = remote.order_id or subscription.ms_order_id
    subscription.catalog_item_id = remote.offer_id or subscription.catalog_item_id
    subscription.friendly_name = remote.friendly_name or subscription.friendly_name
    subscription.product_title = subscription.product_title or remote.offer_name
    subscription.status = _status_from_remote(remote.status)
    subscription.quantity = remote.quantity
    subscription.auto_renew = remote.auto_renew_enabled
    subscription.term_duration = remote.term_duration or subscription.term_duration
    subscription.billing_cycle = (remote.billing_cycle or subscription.billing_cycle).lower()
    subscription.start_date = parse_datetime(remote.raw.get("effectiveStartDate")) or subscription.start_date
    subscription.commitment_end = remote.commitment_end
    subscription.cancellation_allowed_until = remote.cancellation_allowed_until
    subscription.scheduled_next_term = _scheduled_from_remote(remote.raw)
    if subscription.status == Status.SUSPENDED and subscription.suspended_at is None:
        subscription.suspended_at = now
    if subscription.status != Status.SUSPENDED:
        subscription.suspended_at = None
        subscription.suspension_reason = ""
    subscription.last_reconciled_at = now
    subscription.full_clean()
    subscription.save()
    _sync_batches(subscription, remote, now, previous_quantity=before["quantity"])
    _record_event(subscription, action, before, actor_label=actor_label, actor_user_id=actor_user_id,
                  operation=operation)
    return subscription
