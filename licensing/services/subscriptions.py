"""The New Commerce subscription lifecycle: seats, cancellation, auto-renew, next-term changes,
suspension, and reconcile against Partner Center.

Every change is an outbox operation; the local row changes when Microsoft has answered, through
:func:`subscription_apply_remote`, the one write path from Partner Center's view to ours.
Rules that depend on time (windows, refunds) come from :mod:`licensing.nce`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import MicrosoftTenant
from licensing import nce
from licensing.microsoft.client import default_client
from licensing.microsoft.resources import Subscription as RemoteSubscription
from licensing.microsoft.resources import parse_datetime
from licensing.models import (
    Availability,
    Price,
    ProvisioningOperation,
    SeatBatch,
    Sku,
    Subscription,
    SubscriptionEvent,
)
from licensing.provisioning import operation_enqueue, register_operation
from security.audit import Actor, audit_record

from .catalog import customer_unit_price
from .directory import enqueue_on_commit, tenant_skus_refresh_later

REFRESH_TASK = "licensing.tasks.refresh_subscription"

Status = Subscription.Status
TRACKED_FIELDS = ("status", "quantity", "auto_renew", "term_duration", "billing_cycle", "commitment_end",
                  "cancellation_allowed_until", "scheduled_next_term")


class SubscriptionChangeError(nce.RuleViolation):
    """A change refused before anything is sent to Microsoft."""


def _snapshot(subscription: Subscription) -> dict:
    out = {}
    for name in TRACKED_FIELDS:
        value = getattr(subscription, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _record_event(subscription, action: str, before: dict, *, actor_label: str, actor_user=None, operation=None,
                  note: str = "") -> SubscriptionEvent | None:
    after = _snapshot(subscription)
    changed_before = {k: v for k, v in before.items() if after.get(k) != v}
    changed_after = {k: after[k] for k in changed_before}
    if not changed_before and action.startswith("reconcile"):
        return None
    return SubscriptionEvent.objects.create(
        organization_id=subscription.organization_id, subscription=subscription, action=action,
        before=changed_before, after=changed_after, actor_label=actor_label[:100], actor_user=actor_user,
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
    actor_user=None, operation: ProvisioningOperation | None = None,
) -> Subscription:
    """Make the local row say what Partner Center says, and write the change to the ledger."""
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
    _record_event(subscription, action, before, actor_label=actor_label, actor_user=actor_user, operation=operation)
    return subscription


def _customer_id(organization_id) -> str:
    tenant = MicrosoftTenant.objects.for_org(organization_id).first()
    if tenant is None or not tenant.partner_customer_id:
        raise SubscriptionChangeError("The organisation has no linked Microsoft tenant.", code="no_tenant")
    return tenant.partner_customer_id


def _lock(subscription: Subscription) -> Subscription:
    locked = Subscription.objects.for_org(subscription.organization_id).select_for_update().get(pk=subscription.pk)
    pending = ProvisioningOperation.objects.for_org(subscription.organization_id).filter(
        target_type="Subscription", target_id=str(subscription.pk),
        status__in=[ProvisioningOperation.Status.PENDING, ProvisioningOperation.Status.RUNNING],
    )
    if pending.exists():
        raise SubscriptionChangeError(
            "Another change to this subscription is still being processed. Try again when it has finished.",
            code="change_in_progress",
        )
    if not locked.ms_subscription_id:
        raise SubscriptionChangeError("This subscription is still being provisioned.", code="not_ready")
    return locked


def _require_status(subscription: Subscription, *statuses: str, verb: str) -> None:
    if subscription.status not in statuses:
        raise SubscriptionChangeError(
            f"A {subscription.get_status_display().lower()} subscription cannot be {verb}.", code="invalid_status"
        )


def _guard_scheduled(subscription: Subscription, confirm_wipe_scheduled: bool) -> None:
    if subscription.scheduled_next_term and not confirm_wipe_scheduled:
        raise SubscriptionChangeError(
            "This change takes effect now, and Microsoft deletes the changes you scheduled for the next term "
            "when that happens. Confirm to go ahead, then schedule them again.",
            code="scheduled_changes_would_be_wiped",
        )


def _enqueue(subscription, *, kind: str, actor: Actor, payload: dict, audit_action: str, metadata: dict,
             idempotency_key: str = "") -> ProvisioningOperation:
    operation = operation_enqueue(
        organization=subscription.organization, kind=kind, actor=actor, target=subscription,
        payload={"subscription_id": str(subscription.pk), **payload}, idempotency_key=idempotency_key,
    )
    audit_record(actor=actor, action=audit_action, organization=subscription.organization_id, target=subscription,
                 metadata=metadata)
    return operation


def _minimum(subscription: Subscription) -> int:
    return subscription.sku.minimum_quantity if subscription.sku_id else 1


def _maximum(subscription: Subscription) -> int | None:
    return subscription.sku.maximum_quantity if subscription.sku_id else None


def subscription_reduction_plan(*, subscription: Subscription, new_quantity: int, now=None) -> nce.ReductionPlan:
    """The simulator: what removing seats (or cancelling, ``new_quantity=0``) refunds and what stays committed."""
    return nce.plan_reduction(
        batches=list(subscription.seat_batches.all()), current_quantity=subscription.quantity,
        new_quantity=new_quantity, unit_price=subscription.unit_price, billing_cycle=subscription.billing_cycle,
        commitment_end=subscription.commitment_end, now=now or timezone.now(),
        minimum_quantity=_minimum(subscription), billing_anchor=subscription.start_date,
    )


@transaction.atomic
def subscription_change_quantity(
    *, subscription: Subscription, actor: Actor, quantity: int, confirm_wipe_scheduled: bool = False,
    idempotency_key: str = "",
) -> ProvisioningOperation:
    """Add seats at any time; remove seats only from batches still inside their 7-day window."""
    subscription = _lock(subscription)
    _require_status(subscription, Status.ACTIVE, verb="changed")
    if quantity == subscription.quantity:
        raise SubscriptionChangeError("The subscription already has this many seats.", code="no_change")
    maximum = _maximum(subscription)
    if maximum and quantity > maximum:
        raise SubscriptionChangeError(f"This offer allows at most {maximum} seats.", code="quantity_too_high")
    if quantity < subscription.quantity:
        plan = subscription_reduction_plan(subscription=subscription, new_quantity=quantity)
        if not plan.allowed:
            raise SubscriptionChangeError(plan.reason, code="seat_window_closed")
    _guard_scheduled(subscription, confirm_wipe_scheduled)
    return _enqueue(
        subscription, kind="subscription.set_quantity", actor=actor, payload={"quantity": quantity},
        audit_action="subscription.quantity_change_requested",
        metadata={"from": subscription.quantity, "to": quantity}, idempotency_key=idempotency_key,
    )


@transaction.atomic
def subscription_cancel(
    *, subscription: Subscription, actor: Actor, idempotency_key: str = ""
) -> ProvisioningOperation:
    subscription = _lock(subscription)
    _require_status(subscription, Status.ACTIVE, Status.SUSPENDED, verb="cancelled")
    try:
        nce.check_cancellation(cancellation_allowed_until=subscription.cancellation_allowed_until, now=timezone.now())
    except nce.RuleViolation as exc:
        raise SubscriptionChangeError(str(exc), code=exc.code) from None
    return _enqueue(subscription, kind="subscription.cancel", actor=actor, payload={},
                    audit_action="subscription.cancel_requested", metadata={"quantity": subscription.quantity},
                    idempotency_key=idempotency_key)


@transaction.atomic
def subscription_set_auto_renew(*, subscription: Subscription, actor: Actor, enabled: bool,
                                idempotency_key: str = "") -> ProvisioningOperation:
    subscription = _lock(subscription)
    _require_status(subscription, Status.ACTIVE, verb="changed")
    if subscription.auto_renew == enabled:
        raise SubscriptionChangeError(f"Auto-renew is already {'on' if enabled else 'off'}.", code="no_change")
    return _enqueue(subscription, kind="subscription.set_auto_renew", actor=actor, payload={"enabled": enabled},
                    audit_action="subscription.auto_renew_change_requested", metadata={"enabled": enabled},
                    idempotency_key=idempotency_key)


@transaction.atomic
def subscription_schedule_change(
    *, subscription: Subscription, actor: Actor, quantity: int | None = None, term_duration: str | None = None,
    billing_cycle: str | None = None, catalog_item_id: str | None = None, idempotency_key: str = "",
) -> ProvisioningOperation:
    """Changes that take effect at renewal: quantity (also lower), term, billing frequency, or an upgrade SKU."""
    subscription = _lock(subscription)
    _require_status(subscription, Status.ACTIVE, verb="scheduled")
    if not subscription.auto_renew:
        raise SubscriptionChangeError("Turn auto-renew on first: scheduled changes apply when it renews.",
                                      code="auto_renew_off")
    term = term_duration or subscription.term_duration
    cycle = billing_cycle or subscription.billing_cycle
    try:
        nce.validate_term(term, cycle)
    except nce.RuleViolation as exc:
        raise SubscriptionChangeError(str(exc), code=exc.code) from None
    target = catalog_item_id or subscription.catalog_item_id
    availability = Availability.objects.select_related("sku").filter(catalog_item_id=target, is_active=True).first()
    sku = availability.sku if availability else subscription.sku
    if catalog_item_id and availability is None:
        raise SubscriptionChangeError("That offer is not in the catalog.", code="unknown_offer")
    new_quantity = quantity if quantity is not None else subscription.quantity
    if sku is not None and not sku.minimum_quantity <= new_quantity <= (sku.maximum_quantity or new_quantity):
        raise SubscriptionChangeError(
            f"Choose between {sku.minimum_quantity} and {sku.maximum_quantity} seats.", code="quantity_out_of_range"
        )
    instructions = {"quantity": new_quantity, "term_duration": term, "billing_cycle": cycle,
                    "catalog_item_id": target}
    return _enqueue(subscription, kind="subscription.schedule", actor=actor, payload={"instructions": instructions},
                    audit_action="subscription.schedule_requested", metadata=instructions,
                    idempotency_key=idempotency_key)


@transaction.atomic
def subscription_clear_schedule(*, subscription: Subscription, actor: Actor) -> ProvisioningOperation:
    subscription = _lock(subscription)
    if not subscription.scheduled_next_term:
        raise SubscriptionChangeError("Nothing is scheduled for the next term.", code="no_change")
    return _enqueue(subscription, kind="subscription.schedule", actor=actor, payload={"instructions": None},
                    audit_action="subscription.schedule_cleared", metadata={})


@transaction.atomic
def subscription_suspend(*, subscription: Subscription, actor: Actor, reason: str) -> ProvisioningOperation:
    """Block access now (fraud response, staff). Microsoft keeps billing and turns auto-renew off."""
    reason = (reason or "").strip()
    if not reason:
        raise SubscriptionChangeError("Give a reason for the suspension.", code="reason_required")
    subscription = _lock(subscription)
    _require_status(subscription, Status.ACTIVE, verb="suspended")
    subscription.suspension_reason = reason[:300]
    subscription.save(update_fields=["suspension_reason", "updated_at"])
    return _enqueue(subscription, kind="subscription.suspend", actor=actor, payload={"reason": reason[:300]},
                    audit_action="subscription.suspend_requested", metadata={})


@transaction.atomic
def subscription_reactivate(
    *, subscription: Subscription, actor: Actor, auto_renew: bool = True
) -> ProvisioningOperation:
    subscription = _lock(subscription)
    _require_status(subscription, Status.SUSPENDED, verb="reactivated")
    return _enqueue(subscription, kind="subscription.reactivate", actor=actor, payload={"auto_renew": auto_renew},
                    audit_action="subscription.reactivate_requested", metadata={"auto_renew": auto_renew})


# -- operation handlers -------------------------------------------------------------------------
def _target(operation: ProvisioningOperation) -> tuple[Subscription, str]:
    subscription = Subscription.objects.select_related("sku").get(pk=operation.payload["subscription_id"])
    return subscription, _customer_id(subscription.organization_id)


def _apply(operation, subscription, remote, action) -> dict:
    subscription_apply_remote(subscription=subscription, remote=remote, action=action,
                              actor_label=operation.actor_label, actor_user=operation.requested_by,
                              operation=operation)
    return {"status": remote.status, "quantity": remote.quantity}


@register_operation("subscription.set_quantity", on_failure=lambda op: subscription_refresh_later(operation=op))
def _run_set_quantity(operation: ProvisioningOperation) -> dict:
    subscription, customer_id = _target(operation)
    remote = default_client().partner_center.set_quantity(
        customer_id=customer_id, subscription_id=subscription.ms_subscription_id,
        quantity=int(operation.payload["quantity"]), request_id=str(operation.ms_request_id),
    )
    result = _apply(operation, subscription, remote, "quantity_changed")
    tenant_skus_refresh_later(organization_id=subscription.organization_id)
    return result


@register_operation("subscription.cancel", on_failure=lambda op: subscription_refresh_later(operation=op))
def _run_cancel(operation: ProvisioningOperation) -> dict:
    subscription, customer_id = _target(operation)
    remote = default_client().partner_center.cancel_subscription(
        customer_id=customer_id, subscription_id=subscription.ms_subscription_id,
        request_id=str(operation.ms_request_id),
    )
    return _apply(operation, subscription, remote, "cancelled")


@register_operation("subscription.set_auto_renew", on_failure=lambda op: subscription_refresh_later(operation=op))
def _run_auto_renew(operation: ProvisioningOperation) -> dict:
    subscription, customer_id = _target(operation)
    remote = default_client().partner_center.set_auto_renew(
        customer_id=customer_id, subscription_id=subscription.ms_subscription_id,
        enabled=bool(operation.payload["enabled"]), request_id=str(operation.ms_request_id),
    )
    return _apply(operation, subscription, remote, "auto_renew_changed")


def _instructions_json(instructions: dict | None) -> dict | None:
    if instructions is None:
        return None
    product_id, sku_id, *rest = instructions["catalog_item_id"].split(":")
    product = {"productId": product_id, "skuId": sku_id, "termDuration": instructions["term_duration"],
               "billingCycle": instructions["billing_cycle"]}
    if rest:
        product["availabilityId"] = rest[0]
    return {"product": product, "quantity": instructions["quantity"]}


@register_operation("subscription.schedule", on_failure=lambda op: subscription_refresh_later(operation=op))
def _run_schedule(operation: ProvisioningOperation) -> dict:
    subscription, customer_id = _target(operation)
    remote = default_client().partner_center.update_subscription(
        customer_id=customer_id, subscription_id=subscription.ms_subscription_id,
        request_id=str(operation.ms_request_id), operation="schedule",
        changes={"scheduledNextTermInstructions": _instructions_json(operation.payload.get("instructions"))},
    )
    return _apply(operation, subscription, remote, "next_term_scheduled")


@register_operation("subscription.suspend", on_failure=lambda op: _clear_suspension_reason(op))
def _run_suspend(operation: ProvisioningOperation) -> dict:
    subscription, customer_id = _target(operation)
    remote = default_client().partner_center.suspend_subscription(
        customer_id=customer_id, subscription_id=subscription.ms_subscription_id,
        request_id=str(operation.ms_request_id),
    )
    reason = operation.payload.get("reason", "")
    result = _apply(operation, subscription, remote, "suspended")
    subscription.suspension_reason = reason
    subscription.save(update_fields=["suspension_reason", "updated_at"])
    return result


def _clear_suspension_reason(operation: ProvisioningOperation) -> None:
    Subscription.objects.filter(pk=operation.payload.get("subscription_id"), status=Status.ACTIVE).update(
        suspension_reason=""
    )
    subscription_refresh_later(operation=operation)


def subscription_refresh_later(*, operation: ProvisioningOperation) -> None:
    """A change was refused or given up on: what the page shows (windows, refundable seats) may be what
    made Microsoft say no. Re-read this one subscription once the failure is committed, off the request."""
    subscription_id = operation.payload.get("subscription_id")
    if subscription_id:
        enqueue_on_commit(REFRESH_TASK, organization_id=str(operation.organization_id),
                          subscription_id=str(subscription_id))


@register_operation("subscription.reactivate", on_failure=lambda op: subscription_refresh_later(operation=op))
def _run_reactivate(operation: ProvisioningOperation) -> dict:
    subscription, customer_id = _target(operation)
    remote = default_client().partner_center.reactivate_subscription(
        customer_id=customer_id, subscription_id=subscription.ms_subscription_id,
        request_id=str(operation.ms_request_id), auto_renew=bool(operation.payload.get("auto_renew", True)),
    )
    return _apply(operation, subscription, remote, "reactivated")


# -- reconcile ------------------------------------------------------------------------------------
DRIFT_FIELDS = ("status", "quantity", "auto_renew", "term_duration", "billing_cycle")


def _remote_values(remote: RemoteSubscription) -> dict:
    return {"status": _status_from_remote(remote.status), "quantity": remote.quantity,
            "auto_renew": remote.auto_renew_enabled, "term_duration": remote.term_duration,
            "billing_cycle": (remote.billing_cycle or "").lower()}


def subscription_reconcile(*, organization) -> dict:
    """Compare Partner Center's subscriptions with ours, record drift, then adopt Microsoft's view.

    Subscriptions with a change in flight are skipped: their operation will settle them.
    Subscriptions bought outside the portal are imported.
    """
    tenant = MicrosoftTenant.objects.for_org(organization).first()
    if tenant is None or not tenant.partner_customer_id:
        return {"checked": 0, "drifted": 0, "imported": 0}
    remotes = list(default_client().partner_center.iter_subscriptions(customer_id=tenant.partner_customer_id))
    busy = set(
        ProvisioningOperation.objects.for_org(organization)
        .filter(target_type="Subscription",
                status__in=[ProvisioningOperation.Status.PENDING, ProvisioningOperation.Status.RUNNING])
        .values_list("target_id", flat=True)
    )
    counts = {"checked": 0, "drifted": 0, "imported": 0}
    now = timezone.now()
    for remote in remotes:
        if remote.raw.get("billingType") == "usage":
            continue  # Azure plans are consumption, not seats: billing's business.
        with transaction.atomic():
            local = (Subscription.objects.for_org(organization).select_for_update()
                     .filter(ms_subscription_id=remote.id).first())
            if local is not None and str(local.pk) in busy:
                continue
            counts["checked"] += 1
            if local is None:
                local = _import_remote(organization, remote)
                counts["imported"] += 1
                action = "imported"
            else:
                theirs = _remote_values(remote)
                drift = {name: {"local": getattr(local, name), "microsoft": theirs[name]}
                         for name in DRIFT_FIELDS if getattr(local, name) != theirs[name]}
                if drift:
                    counts["drifted"] += 1
                    local.drift = drift
                    local.drift_detected_at = now
                    audit_record(actor=Actor.system("reconcile"), action="subscription.drift_detected",
                                 organization=organization, target=local, metadata={"fields": sorted(drift)})
                action = "reconcile_drift" if drift else "reconcile"
            subscription_apply_remote(subscription=local, remote=remote, action=action, actor_label="system:reconcile")
    return counts


def subscription_refresh(*, organization, subscription_id) -> Subscription | None:
    """Reconcile one subscription with Partner Center. Left alone while a change to it is in flight
    (that operation settles it), and when it is not provisioned or the tenant is no longer linked."""
    with transaction.atomic():
        subscription = (Subscription.objects.for_org(organization).select_for_update()
                        .filter(pk=subscription_id).exclude(ms_subscription_id=None).first())
        if subscription is None:
            return None
        busy = ProvisioningOperation.objects.for_org(organization).filter(
            target_type="Subscription", target_id=str(subscription.pk),
            status__in=[ProvisioningOperation.Status.PENDING, ProvisioningOperation.Status.RUNNING],
        ).exists()
        tenant = MicrosoftTenant.objects.for_org(organization).first()
        if busy or tenant is None or not tenant.partner_customer_id:
            return subscription
        remote = default_client().partner_center.get_subscription(
            customer_id=tenant.partner_customer_id, subscription_id=subscription.ms_subscription_id,
        )
        return subscription_apply_remote(subscription=subscription, remote=remote, action="reconcile",
                                         actor_label="system:refresh")


def _import_remote(organization, remote: RemoteSubscription) -> Subscription:
    parts = remote.offer_id.split(":")
    sku = Sku.objects.filter(product__product_id=parts[0], sku_id=parts[1]).first() if len(parts) >= 2 else None
    subscription = Subscription(
        organization=organization, sku=sku, catalog_item_id=remote.offer_id,
        product_title=(sku.title if sku else remote.offer_name) or remote.offer_id,
        term_duration=remote.term_duration or "P1M", billing_cycle=(remote.billing_cycle or "monthly").lower(),
        unit_price=_unit_price_guess(organization, remote),
    )
    return subscription


def _unit_price_guess(organization, remote: RemoteSubscription) -> Decimal:
    price = Price.objects.filter(availability__catalog_item_id=remote.offer_id, term_duration=remote.term_duration,
                                 billing_cycle=(remote.billing_cycle or "").lower()).first()
    value = customer_unit_price(organization=organization, price=price) if price else None
    return value if value is not None else Decimal("0")
