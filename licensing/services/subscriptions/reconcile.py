"""Reconcile against Partner Center: import subscriptions made elsewhere, record drift, refresh one.

After adopting Microsoft's view, the reconcile checks the seat invariant of every pool (Microsoft may
have lowered the seats: a renewal at fewer seats, a suspension, an expiry, a change in Partner Center)
and marks the pools left over-assigned (:func:`licensing.services.seats.seat_pools_flag_over_assigned`).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import MicrosoftTenant
from core.audit import Actor, audit_record
from licensing.microsoft.client import default_client
from licensing.microsoft.resources import Subscription as RemoteSubscription
from licensing.models import (
    Price,
    ProvisioningOperation,
    Sku,
    Subscription,
)

from ..catalog import customer_unit_price
from ..seats import seat_pools_flag_over_assigned
from .ledger import _status_from_remote, subscription_apply_remote

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
    counts.update(seat_pools_flag_over_assigned(organization=organization))
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
