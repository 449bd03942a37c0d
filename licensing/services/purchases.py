"""Buying: review, optional owner approval, and checkout through the outbox.

The checkout operation creates a cart and checks it out with the operation's stable
MS-RequestId, then follows the order until the subscription exists and its seats are
visible in the customer's tenant. Its milestones drive the timeline on the order page:
submitted -> accepted (Microsoft took the order) -> subscription_created (every order line
has its subscription id) -> provisioned (subscriptions active) -> seats_visible (Graph shows
the seats).

Microsoft provisions asynchronously: checkout answers with a pending order whose lines may
lack a subscriptionId, and the subscriptions appear (first pending, then active) seconds to
minutes later, line by line. The operation polls (OperationInProgress) until every line has
an active subscription, keeping how many lines are ready in its checkpoint for the timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import MicrosoftTenant
from accounts.roles import Role
from core.audit import Actor, audit_record
from licensing import nce
from licensing.holds import require_no_provisioning_hold
from licensing.microsoft.client import default_client
from licensing.microsoft.errors import Conflict, MicrosoftError
from licensing.microsoft.resources import CartLine
from licensing.models import Order, Price, ProvisioningOperation, Subscription
from licensing.pricing import customer_price
from licensing.provisioning import (
    OperationInProgress,
    OperationRefused,
    operation_enqueue,
    operation_milestone,
    register_operation,
)
from licensing.selectors.settings import licensing_settings

from .directory import tenant_skus_refresh_later
from .onboarding import require_ready_to_buy
from .subscriptions import subscription_apply_remote

POLL_SECONDS = 15
# Provisioning usually takes seconds, with a tail: poll soon first, then settle at POLL_SECONDS.
EARLY_POLLS = (2, 3, 5, 10)


def _poll_in(operation: ProvisioningOperation) -> float:
    return EARLY_POLLS[operation.polls] if operation.polls < len(EARLY_POLLS) else POLL_SECONDS


class PurchaseError(nce.RuleViolation):
    pass


@dataclass(frozen=True)
class Quote:
    price: Price
    quantity: int
    auto_renew: bool
    unit_price: Decimal
    total: Decimal
    currency: str
    needs_approval: bool
    explanation: str


def order_quote(*, organization, price: Price, quantity: int, auto_renew: bool = True) -> Quote:
    """Everything the review step shows; raises with a clear message when the choice is not buyable."""
    sku = price.availability.sku
    if not (price.is_active and price.availability.is_active and price.availability.is_purchasable):
        raise PurchaseError("This offer is no longer sold.", code="offer_unavailable")
    try:
        nce.validate_term(price.term_duration, price.billing_cycle)
    except nce.RuleViolation as exc:
        raise PurchaseError(str(exc), code=exc.code) from None
    if not sku.minimum_quantity <= quantity <= sku.maximum_quantity:
        raise PurchaseError(f"Choose between {sku.minimum_quantity} and {sku.maximum_quantity} seats.",
                            code="quantity_out_of_range")
    quoted = customer_price(organization=organization, price=price)
    unit = None if quoted is None else quoted.amount
    if unit is None:
        raise PurchaseError("This offer has no price yet; try again after the next catalog update.",
                            code="no_price")
    total = unit * quantity
    settings = licensing_settings(organization)
    # The threshold is an amount in the settings' currency. An order in another currency cannot be
    # compared with it (no exchange rates here), so an owner decides: approval fails closed.
    needs_approval = settings.approval_threshold is not None and (
        quoted.currency != settings.currency or total > settings.approval_threshold
    )
    return Quote(
        price=price, quantity=quantity, auto_renew=auto_renew, unit_price=unit, total=total,
        currency=quoted.currency, needs_approval=needs_approval,
        explanation=nce.offer_in_words(term_duration=price.term_duration, billing_cycle=price.billing_cycle,
                                       unit_price=unit, currency=quoted.currency,
                                       cancellation_window=price.cancellation_window or "P7D"),
    )


@transaction.atomic
def order_place(
    *, organization, actor: Actor, user, role: str | None, price: Price, quantity: int, auto_renew: bool = True,
    idempotency_key: str = "",
) -> Order:
    """Place an order. Above the organisation's threshold, a non-owner's order waits for an owner.

    With an ``idempotency_key``, placing the same order again (a double-clicked confirm, a retried
    request) returns the first order: the unique constraint decides, so two racing requests buy once.
    """
    require_ready_to_buy(organization)
    require_no_provisioning_hold(organization)
    quote = order_quote(organization=organization, price=price, quantity=quantity, auto_renew=auto_renew)
    needs_approval = quote.needs_approval and role != Role.OWNER
    order = Order(
        organization=organization, price=price, sku=price.availability.sku,
        catalog_item_id=price.availability.catalog_item_id, product_title=price.availability.sku.title,
        quantity=quantity, term_duration=price.term_duration, billing_cycle=price.billing_cycle,
        auto_renew=auto_renew, unit_price=quote.unit_price, total=quote.total, currency=quote.currency,
        status=Order.Status.AWAITING_APPROVAL if needs_approval else Order.Status.SUBMITTED, requested_by=user,
        idempotency_key=idempotency_key,
    )
    if not needs_approval and user is not None and role == Role.OWNER and quote.needs_approval:
        order.approved_by, order.decided_at = user, timezone.now()
    order.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            order.save()
    except IntegrityError:
        if not idempotency_key:
            raise
        return Order.objects.for_org(organization).get(idempotency_key=idempotency_key)
    audit_record(actor=actor, action="order.placed", organization=organization, target=order,
                 metadata={"catalog_item_id": order.catalog_item_id, "quantity": quantity,
                           "total": str(order.total), "awaiting_approval": needs_approval})
    if not needs_approval:
        _submit(order, actor, idempotency_key)
    return order


def _submit(order: Order, actor: Actor, idempotency_key: str = "") -> None:
    order.operation = operation_enqueue(
        organization=order.organization, kind="order.checkout", actor=actor, target=order,
        payload={"order_id": str(order.pk)}, idempotency_key=idempotency_key or f"order:{order.pk}",
    )
    order.status = Order.Status.SUBMITTED
    order.save(update_fields=["operation", "status", "updated_at"])


@transaction.atomic
def order_approve(*, order: Order, actor: Actor, user) -> Order:
    order = Order.objects.for_org(order.organization_id).select_for_update().get(pk=order.pk)
    if order.status != Order.Status.AWAITING_APPROVAL:
        raise PurchaseError("This order is not waiting for approval.", code="not_awaiting_approval")
    require_ready_to_buy(order.organization)
    require_no_provisioning_hold(order.organization)
    order.approved_by, order.decided_at = user, timezone.now()
    order.save(update_fields=["approved_by", "decided_at", "updated_at"])
    audit_record(actor=actor, action="order.approved", organization=order.organization_id, target=order)
    _submit(order, actor)
    return order


@transaction.atomic
def order_reject(*, order: Order, actor: Actor, user, reason: str = "") -> Order:
    order = Order.objects.for_org(order.organization_id).select_for_update().get(pk=order.pk)
    if order.status != Order.Status.AWAITING_APPROVAL:
        raise PurchaseError("This order is not waiting for approval.", code="not_awaiting_approval")
    order.status = Order.Status.REJECTED
    order.approved_by, order.decided_at = user, timezone.now()
    order.failure_reason = (reason or "Rejected by an owner.")[:300]
    order.save()
    audit_record(actor=actor, action="order.rejected", organization=order.organization_id, target=order)
    return order


def _order_failed(operation: ProvisioningOperation) -> None:
    order = Order.objects.filter(pk=operation.payload.get("order_id")).first()
    if order is None:
        return
    order.status = Order.Status.FAILED
    order.failure_reason = (operation.failure_reason or operation.last_error or "Provisioning failed.")[:300]
    order.save(update_fields=["status", "failure_reason", "updated_at"])
    audit_record(actor=Actor.system("provisioning"), action="order.failed", organization=order.organization_id,
                 target=order, metadata={"operation": str(operation.pk), "status": operation.status,
                                         "code": (operation.last_error_code or "")[:64]})


@register_operation("order.checkout", on_failure=_order_failed, max_attempts=6)
def _run_checkout(operation: ProvisioningOperation) -> dict:
    order = Order.objects.select_related("sku").get(pk=operation.payload["order_id"])
    tenant = MicrosoftTenant.objects.get(organization_id=order.organization_id)
    customer_id = tenant.partner_customer_id
    pc = default_client().partner_center
    checkpoint = operation.checkpoint
    request_id = str(operation.ms_request_id)
    if not checkpoint.get("order_id"):
        if not checkpoint.get("cart_id"):
            cart = pc.create_cart(customer_id=customer_id, request_id=request_id, lines=[CartLine(
                catalog_item_id=order.catalog_item_id, quantity=order.quantity, term_duration=order.term_duration,
                billing_cycle=order.billing_cycle, friendly_name=order.product_title[:100],
            )])
            if cart.line_errors:
                error = cart.line_errors[0]
                raise OperationRefused(error.get("errorDescription", "Microsoft refused the order line."),
                                       code=str(error.get("errorCode", "cart_error")))
            checkpoint["cart_id"] = cart.id
        try:
            result = pc.checkout_cart(customer_id=customer_id, cart_id=checkpoint["cart_id"], request_id=request_id)
        except Conflict as exc:
            if exc.code != "800065":
                raise
            # Already checked out by an earlier run whose answer we lost: find the order it made.
            result = None
        if result is not None:
            if result.order_errors and not result.orders:
                error = result.order_errors[0]
                raise OperationRefused(error.get("description", "Microsoft refused the order."),
                                       code=str(error.get("code", "order_error")))
            checkpoint["order_id"] = result.orders[0].id
        else:
            checkpoint["order_id"] = _find_order(pc, customer_id, order)
        operation_milestone(operation, "accepted")
    ms_order = pc.get_order(customer_id=customer_id, order_id=checkpoint["order_id"])
    remotes = list(pc.iter_subscriptions(customer_id=customer_id, order_id=ms_order.id))
    _await_provisioning(operation, ms_order, remotes)
    operation_milestone(operation, "provisioned")
    if order.sku.provisioning_id and "seats_visible" not in operation.milestones:
        visible = _seats_visible(tenant, order)
        if visible is False:
            raise OperationInProgress("Waiting for the seats to appear in the tenant.",
                                      retry_in=_poll_in(operation))
        if visible:
            operation_milestone(operation, "seats_visible")
    for remote in remotes:
        subscription = Subscription.objects.filter(ms_subscription_id=remote.id).first() or Subscription(
            organization_id=order.organization_id, order=order, sku=order.sku, catalog_item_id=order.catalog_item_id,
            product_title=order.product_title, term_duration=order.term_duration, billing_cycle=order.billing_cycle,
            unit_price=order.unit_price, currency=order.currency,
        )
        subscription_apply_remote(subscription=subscription, remote=remote, action="purchased",
                                  actor_label=operation.actor_label, actor_user_id=operation.requested_by_id,
                                  operation=operation)
        if remote.auto_renew_enabled != order.auto_renew:
            checkpoint.setdefault("auto_renew_fix", []).append(remote.id)
    order.status = Order.Status.COMPLETED
    order.ms_order_id = ms_order.id
    order.save(update_fields=["status", "ms_order_id", "updated_at"])
    audit_record(actor=Actor.system("provisioning"), action="order.completed", organization=order.organization_id,
                 target=order, metadata={"ms_order_id": ms_order.id})
    # The Licenses page and bulk dry runs count free seats from the tenant's SKUs: refresh them now.
    tenant_skus_refresh_later(organization_id=order.organization_id)
    for subscription in Subscription.objects.filter(order=order, ms_subscription_id__in=checkpoint.get(
            "auto_renew_fix", [])):
        # Checkout cannot carry auto-renew: set it afterwards, through its own operation.
        operation_enqueue(organization=order.organization, kind="subscription.set_auto_renew",
                          actor=Actor.system("checkout"), target=subscription,
                          payload={"subscription_id": str(subscription.pk), "enabled": order.auto_renew})
    return {"ms_order_id": ms_order.id, "subscriptions": [r.id for r in remotes]}


def _await_provisioning(operation: ProvisioningOperation, ms_order, remotes) -> None:
    """Raise OperationInProgress until every line of the Microsoft order has an active subscription.

    A line without a subscriptionId is not provisioned yet (its id arrives later); a line whose
    subscription is not listed yet, or listed as pending, is not either. Progress is kept in the
    checkpoint as [ready, total] lines and shown on the order's timeline."""
    active = {r.id for r in remotes if r.status != "pending"}
    ids = [line.subscription_id for line in ms_order.lines]
    total = len(ids)
    if ids and all(ids):
        operation_milestone(operation, "subscription_created")
    ready = sum(1 for i in ids if i and i in active)
    operation.checkpoint["lines_ready"] = [ready, total]
    if ms_order.status.lower() != "completed" or not total or ready < total:
        waiting = f"{ready} of {total} order lines" if total else "the order lines"
        raise OperationInProgress(f"Microsoft is provisioning the order ({waiting} ready).",
                                  retry_in=_poll_in(operation))


def _find_order(pc, customer_id: str, order: Order) -> str:
    candidates = [
        o for o in pc.list_orders(customer_id=customer_id)
        if any(line.offer_id == order.catalog_item_id and line.quantity == order.quantity for line in o.lines)
    ]
    if not candidates:
        raise OperationRefused("The cart was submitted but Microsoft shows no matching order.", code="order_missing")
    return max(candidates, key=lambda o: o.created_at or timezone.now()).id


def _seats_visible(tenant: MicrosoftTenant, order: Order) -> bool | None:
    """True or False from Graph; None when Graph cannot tell us (no application consent yet)."""
    try:
        skus = default_client().graph.subscribed_skus(tenant_id=str(tenant.tenant_id))
    except MicrosoftError as exc:
        if exc.retryable:
            raise
        return None
    return any(s.sku_id == order.sku.provisioning_id and s.enabled >= order.quantity for s in skus)
