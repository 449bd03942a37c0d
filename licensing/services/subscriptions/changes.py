"""Changes a customer asks for: seats, cancellation, auto-renew, next-term changes, suspension.

Each is refused up front when New Commerce does not allow it (SubscriptionChangeError), else written
as an outbox operation; its handler, registered here, applies Microsoft's answer through the ledger.

Changes that lower the seats (reduction, cancellation, suspension) are also checked against the seat
invariant under the seat pool's lock (:mod:`licensing.services.seats`, decision 011). A reduction can
release chosen users' licenses in the same step: their unassignments are queued first, and the
reduction's handler waits for them and goes ahead only if every one of them was removed.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import MicrosoftTenant
from core.audit import Actor, audit_record
from licensing import nce
from licensing.holds import require_no_provisioning_hold
from licensing.microsoft.client import default_client
from licensing.models import (
    Availability,
    LicenseAssignment,
    ProvisioningOperation,
    Subscription,
)
from licensing.provisioning import (
    operation_enqueue,
    operation_milestone,
    register_operation,
)

from ..assignments import _queue as queue_license_changes
from ..directory import enqueue_on_commit, tenant_skus_refresh_later
from ..seats import override_accepted, seat_pool_guard, seat_pool_shortfall
from .ledger import Status, subscription_apply_remote
from .reductions import await_releases, recheck_seats, releasable

REFRESH_TASK = "licensing.tasks.refresh_subscription"


class SubscriptionChangeError(nce.RuleViolation):
    """A change refused before anything is sent to Microsoft."""


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


def subscription_reduction_plan(*, subscription: Subscription, new_quantity: int, now=None,
                                unit_price=None) -> nce.ReductionPlan:
    """The simulator: what removing seats (or cancelling, ``new_quantity=0``) refunds and what stays committed.

    Priced at the customer's unit price unless ``unit_price`` is given (Microsoft's price, to compare
    with Partner Center's credits).
    """
    return nce.plan_reduction(
        batches=list(subscription.seat_batches.all()), current_quantity=subscription.quantity,
        new_quantity=new_quantity, unit_price=subscription.unit_price if unit_price is None else unit_price,
        billing_cycle=subscription.billing_cycle,
        commitment_end=subscription.commitment_end, now=now or timezone.now(),
        minimum_quantity=_minimum(subscription), billing_anchor=subscription.start_date,
    )


@transaction.atomic
def subscription_change_quantity(
    *, subscription: Subscription, actor: Actor, quantity: int, confirm_wipe_scheduled: bool = False,
    idempotency_key: str = "", release: Sequence = (), requested_by=None, override_reason: str = "",
) -> ProvisioningOperation:
    """Add seats at any time; remove seats only from batches still inside their 7-day window, and only
    down to the licenses held (the seat invariant).

    ``release`` (assignment ids of the SKU) unassigns those users first, in the same step: their
    unassignments and then the reduction are queued together, and the reduction goes ahead only once
    every one of them is confirmed removed. Staff may pass ``override_reason`` to reduce below the
    licenses held; it is audited.
    """
    subscription = _lock(subscription)
    _require_status(subscription, Status.ACTIVE, verb="changed")
    if quantity == subscription.quantity:
        raise SubscriptionChangeError("The subscription already has this many seats.", code="no_change")
    maximum = _maximum(subscription)
    if maximum and quantity > maximum:
        raise SubscriptionChangeError(f"This offer allows at most {maximum} seats.", code="quantity_too_high")
    if release and quantity > subscription.quantity:
        raise ValidationError("Licenses are released only together with a seat reduction.")
    if quantity > subscription.quantity:
        require_no_provisioning_hold(subscription.organization)
    released: list[LicenseAssignment] = []
    shortfall = None
    if quantity < subscription.quantity:
        plan = subscription_reduction_plan(subscription=subscription, new_quantity=quantity)
        if not plan.allowed:
            raise SubscriptionChangeError(plan.reason, code="seat_window_closed")
        if release:
            # Locks the seat pool, then the chosen assignments (the order license_assign takes them in).
            probe = seat_pool_shortfall(subscription=subscription, new_quantity=quantity, lock=True)
            released = releasable(subscription, probe.pool if probe else None, release)
        # Under the pool lock: from here no assignment can take a seat this reduction removes.
        shortfall = seat_pool_guard(subscription=subscription, new_quantity=quantity, actor=actor,
                                    releasing=len(released), override_reason=override_reason)
    _guard_scheduled(subscription, confirm_wipe_scheduled)
    after = []
    if released:
        after = queue_license_changes(subscription.organization, released, LicenseAssignment.State.REMOVING, actor,
                                      requested_by)
        for assignment in released:
            audit_record(actor=actor, action="license.unassign_requested", organization=subscription.organization_id,
                         target=assignment, metadata={"sku": str(assignment.sku.sku_id), "for": "seat_reduction"})
    payload = {"quantity": quantity}
    if after:
        payload.update(after_operations=[str(op.pk) for op in after], released=[str(a.pk) for a in released])
    if shortfall is not None and shortfall.short and override_reason:
        payload["seat_check_overridden"] = True
    return _enqueue(
        subscription, kind="subscription.set_quantity", actor=actor, payload=payload,
        audit_action="subscription.quantity_change_requested",
        metadata={"from": subscription.quantity, "to": quantity, "released": len(released)},
        idempotency_key=idempotency_key,
    )


@transaction.atomic
def subscription_cancel(
    *, subscription: Subscription, actor: Actor, idempotency_key: str = "", override_reason: str = "",
) -> ProvisioningOperation:
    """Cancel within the window, once no license of it is still assigned (staff may override, audited)."""
    subscription = _lock(subscription)
    _require_status(subscription, Status.ACTIVE, Status.SUSPENDED, verb="cancelled")
    try:
        nce.check_cancellation(cancellation_allowed_until=subscription.cancellation_allowed_until, now=timezone.now())
    except nce.RuleViolation as exc:
        raise SubscriptionChangeError(str(exc), code=exc.code) from None
    payload = {}
    if subscription.status == Status.ACTIVE:
        seat_pool_guard(subscription=subscription, new_quantity=0, actor=actor, verb="cancelling",
                        override_reason=override_reason)
        if override_accepted(actor, override_reason):
            payload["seat_check_overridden"] = True
    return _enqueue(subscription, kind="subscription.cancel", actor=actor, payload=payload,
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
    metadata = dict(instructions)
    if new_quantity < subscription.quantity:
        # Not refused (the renewal is months away), but warned about and recorded: the reconcile checks
        # again when the renewal takes effect. seat_warning_at_term_end words it for the page and the API.
        shortfall = seat_pool_shortfall(subscription=subscription, new_quantity=new_quantity)
        if shortfall is not None and shortfall.short:
            metadata["seats_short_at_renewal"] = shortfall.short
    return _enqueue(subscription, kind="subscription.schedule", actor=actor, payload={"instructions": instructions},
                    audit_action="subscription.schedule_requested", metadata=metadata,
                    idempotency_key=idempotency_key)


@transaction.atomic
def subscription_clear_schedule(*, subscription: Subscription, actor: Actor) -> ProvisioningOperation:
    subscription = _lock(subscription)
    if not subscription.scheduled_next_term:
        raise SubscriptionChangeError("Nothing is scheduled for the next term.", code="no_change")
    return _enqueue(subscription, kind="subscription.schedule", actor=actor, payload={"instructions": None},
                    audit_action="subscription.schedule_cleared", metadata={})


@transaction.atomic
def subscription_suspend(*, subscription: Subscription, actor: Actor, reason: str,
                         override_reason: str = "") -> ProvisioningOperation:
    """Block access now (fraud response, staff). Microsoft keeps billing and turns auto-renew off.

    A suspension takes the seats away, so it is refused while licenses of it are assigned unless the
    seat check is overridden with a reason (audited): a fraud response passes one.
    """
    reason = (reason or "").strip()
    if not reason:
        raise SubscriptionChangeError("Give a reason for the suspension.", code="reason_required")
    subscription = _lock(subscription)
    _require_status(subscription, Status.ACTIVE, verb="suspended")
    seat_pool_guard(subscription=subscription, new_quantity=0, actor=actor, verb="suspending",
                    override_reason=override_reason)
    subscription.suspension_reason = reason[:300]
    subscription.save(update_fields=["suspension_reason", "updated_at"])
    payload = {"reason": reason[:300]}
    if override_accepted(actor, override_reason):
        payload["seat_check_overridden"] = True
    return _enqueue(subscription, kind="subscription.suspend", actor=actor, payload=payload,
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
                              actor_label=operation.actor_label, actor_user_id=operation.requested_by_id,
                              operation=operation)
    return {"status": remote.status, "quantity": remote.quantity}


@register_operation("subscription.set_quantity", on_failure=lambda op: subscription_refresh_later(operation=op))
def _run_set_quantity(operation: ProvisioningOperation) -> dict:
    subscription, customer_id = _target(operation)
    await_releases(operation)
    recheck_seats(operation, subscription, int(operation.payload["quantity"]))
    remote = default_client().partner_center.set_quantity(
        customer_id=customer_id, subscription_id=subscription.ms_subscription_id,
        quantity=int(operation.payload["quantity"]), request_id=str(operation.ms_request_id),
    )
    result = _apply(operation, subscription, remote, "quantity_changed")
    operation_milestone(operation, "seats_changed")
    tenant_skus_refresh_later(organization_id=subscription.organization_id)
    return result


@register_operation("subscription.cancel", on_failure=lambda op: subscription_refresh_later(operation=op))
def _run_cancel(operation: ProvisioningOperation) -> dict:
    subscription, customer_id = _target(operation)
    if subscription.status == Status.ACTIVE:
        # Checked again as the worker runs it: seats lowered at Microsoft since the request (a renewal,
        # a change in Partner Center) may mean the licenses held now need this subscription's seats.
        recheck_seats(operation, subscription, 0, verb="cancelling", outcome="The subscription was not cancelled.")
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
    if subscription.status == Status.ACTIVE:
        # As for a cancellation: the seats may be needed by now.
        recheck_seats(operation, subscription, 0, verb="suspending", outcome="The subscription was not suspended.")
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
