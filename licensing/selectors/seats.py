"""Seats purchased per seat pool: the right-hand side of the seat invariant.

The invariant (docs/decisions/011-seat-invariant.md): for every organisation and SKU, licenses
held by assignments (pending, assigned, removing) never exceed the seats purchased on the active
subscriptions of that SKU.

"Seats purchased" is what the active subscriptions hold now; for the checks that take seats (an
assignment) or take them away (a reduction), it is counted as it will be once the portal's queued
changes land:

- a pool that the portal's subscriptions back (the catalog SKU's ``provisioning_id`` is the Graph
  skuId) counts the seats of its *active* subscriptions, with an in-flight reduction counted at its
  new quantity and an in-flight cancellation or suspension at zero; and never more than Graph's
  ``prepaidUnits`` (``TenantSku.purchased``), which is what Microsoft lets anyone assign;
- a pool no portal subscription backs (seats bought elsewhere, trials) counts Graph's figure.

Counting queued reductions is what closes the race between a reduction and an assignment: both
take the pool's row lock, and whichever comes second sees the other's committed rows.
Two queries for every pool of the organisation, whatever their number.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import BooleanField, Case, Count, F, Q, Value, When
from django.utils import timezone

from licensing.models import LicenseAssignment, ProvisioningOperation, Subscription, TenantSku, inactive_since

from .settings import licensing_settings

SEAT_HOLDING = LicenseAssignment.SEAT_HOLDING
# Operations that lower a subscription's seats once Microsoft has carried them out.
LOWERING_KINDS = ("subscription.set_quantity", "subscription.cancel", "subscription.suspend")
IN_FLIGHT = (ProvisioningOperation.Status.PENDING, ProvisioningOperation.Status.RUNNING)


@dataclass(frozen=True)
class PoolSeats:
    pool_id: object
    purchased: int
    assigned: int

    @property
    def excess(self) -> int:
        return max(0, self.assigned - self.purchased)


def _key(value) -> str:
    return str(value).lower()


def organization_subscriptions(organization) -> list[Subscription]:
    """Every subscription of the organisation with its catalog SKU, oldest start first. One query.

    A page that derives several figures from the subscriptions (prices, suspended and purchased seats,
    renewals, spend) reads them once with this and hands them to each selector as ``subscriptions``; the
    selectors then filter in memory what they would otherwise have queried, in the same order."""
    return list(Subscription.objects.for_org(organization).select_related("sku").order_by("start_date", "created_at"))


def subscriptions_by_pool_key(organization, *, subscriptions: list[Subscription] | None = None,
                              ) -> dict[str, list[Subscription]]:
    """Every subscription with a catalog SKU, grouped by Graph skuId (lower case). One query, none given
    :func:`organization_subscriptions`."""
    grouped: dict[str, list[Subscription]] = defaultdict(list)
    if subscriptions is None:
        rows = (Subscription.objects.for_org(organization).filter(sku__isnull=False).exclude(sku__provisioning_id="")
                .select_related("sku").order_by("start_date", "created_at"))
    else:
        rows = [sub for sub in subscriptions if sub.sku_id is not None and sub.sku.provisioning_id != ""]
    for sub in rows:
        grouped[_key(sub.sku.provisioning_id)].append(sub)
    return grouped


def in_flight_quantities(organization, subscription_ids, *, exclude_operation=None) -> dict[str, int]:
    """Subscription id -> the quantity a queued lowering change leaves it with. One query."""
    if not subscription_ids:
        return {}
    operations = ProvisioningOperation.objects.for_org(organization).filter(
        kind__in=LOWERING_KINDS, status__in=IN_FLIGHT, target_type="Subscription",
        target_id__in=[str(pk) for pk in subscription_ids],
    )
    if exclude_operation is not None:
        operations = operations.exclude(pk=exclude_operation.pk)
    result: dict[str, int] = {}
    for operation in operations:
        if operation.kind == "subscription.set_quantity":
            quantity = int((operation.payload or {}).get("quantity", 0))
        else:
            quantity = 0
        previous = result.get(operation.target_id)
        result[operation.target_id] = quantity if previous is None else min(previous, quantity)
    return result


def purchased_by_pool(organization, pools, *, changes: dict | None = None, exclude_operation=None,
                      in_flight: bool = True, subscriptions: list[Subscription] | None = None) -> dict:
    """Pool pk -> seats purchased as defined above. ``changes`` (subscription pk -> quantity) answers "what if".

    ``exclude_operation`` leaves one in-flight operation out (its own handler asks what it may do).
    ``in_flight=False`` counts the seats as they are now, queued changes left out: what the pages show
    and what the reconcile compares with (a queued reduction that releases users first briefly has
    more licenses being removed than the seats it will leave; it goes ahead only once they are gone).
    ``subscriptions``: those of :func:`organization_subscriptions`, when the caller has read them.
    """
    pools = list(pools)
    by_key = subscriptions_by_pool_key(organization, subscriptions=subscriptions)
    wanted = [s for p in pools for s in by_key.get(_key(p.sku_id), [])]
    flying = {}
    if in_flight:
        flying = in_flight_quantities(organization, [s.pk for s in wanted if s.status == Subscription.Status.ACTIVE],
                                      exclude_operation=exclude_operation)
    changes = {str(k): v for k, v in (changes or {}).items()}
    result = {}
    for pool in pools:
        subscriptions = by_key.get(_key(pool.sku_id), [])
        if not subscriptions:
            result[pool.pk] = pool.purchased
            continue
        seats = 0
        for sub in subscriptions:
            if sub.status != Subscription.Status.ACTIVE:
                continue
            quantity = min(sub.quantity, flying.get(str(sub.pk), sub.quantity))
            if str(sub.pk) in changes:
                quantity = min(quantity, changes[str(sub.pk)])
            seats += quantity
        result[pool.pk] = min(seats, pool.purchased)
    return result


def seats_purchased(organization, pool: TenantSku, **kwargs) -> int:
    return purchased_by_pool(organization, [pool], **kwargs)[pool.pk]


def seats_held(organization, pool: TenantSku) -> int:
    return LicenseAssignment.objects.for_org(organization).filter(sku=pool, state__in=SEAT_HOLDING).count()


def pool_for_subscription(subscription: Subscription) -> TenantSku | None:
    """The seat pool a subscription's seats belong to, if the tenant has it."""
    if subscription.sku_id is None or not subscription.sku.provisioning_id:
        return None
    return (TenantSku.objects.for_org(subscription.organization_id)
            .filter(sku_id=_safe_uuid(subscription.sku.provisioning_id)).first())


def _safe_uuid(value: str):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return uuid.UUID(int=0)


def seats_short_at(subscription: Subscription, quantity: int) -> int:
    """How many licenses must be unassigned for the subscription's pool to fit ``quantity`` seats on it
    (0 when they fit or the pool is not in the tenant). Unlocked: for warnings and reminders."""
    pool = pool_for_subscription(subscription)
    if pool is None:
        return 0
    purchased = purchased_by_pool(subscription.organization_id, [pool], changes={subscription.pk: quantity})
    return max(0, seats_held(subscription.organization_id, pool) - purchased[pool.pk])


def pool_seats(organization) -> list[PoolSeats]:
    """Held and purchased (now, queued changes left out) seats of every pool. Three queries."""
    pools = list(TenantSku.objects.for_org(organization).annotate(
        held=Count("assignments", filter=Q(assignments__state__in=SEAT_HOLDING))))
    purchased = purchased_by_pool(organization, pools, in_flight=False)
    return [PoolSeats(pool_id=p.pk, purchased=purchased[p.pk], assigned=p.held) for p in pools]


def over_assigned_pools(organization, *, pools: list[TenantSku] | None = None):
    """Pools the reconcile marked over-assigned and not yet resolved, for the Licenses page and the overview,
    by name. One query; none given every pool of the organisation already read in name order (``seat_pools``),
    which are filtered instead."""
    if pools is not None:
        return [pool for pool in pools if pool.over_assigned_since is not None]
    return TenantSku.objects.for_org(organization).filter(over_assigned_since__isnull=False).order_by("display_name")


def release_candidates(organization, pool: TenantSku, *, now=None):
    """The pool's assigned licenses for the reduction page, ranked as the reclaim report ranks them:
    inactive users first (no sign-in within the organisation's inactive days, never signed in counting
    once the user is that old), then by last sign-in, oldest first. One query."""
    cutoff = (now or timezone.now()) - timedelta(days=licensing_settings(organization).inactive_days)
    inactive = inactive_since(cutoff, "user__")
    return (
        LicenseAssignment.objects.for_org(organization)
        .filter(sku=pool, state=LicenseAssignment.State.ASSIGNED)
        .select_related("user")
        .annotate(inactive=Case(When(inactive, then=Value(True)), default=Value(False), output_field=BooleanField()))
        .order_by(F("inactive").desc(), F("user__last_sign_in_at").asc(nulls_first=True), "pk")
    )
