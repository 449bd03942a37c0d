"""The seat invariant: never more licenses held than seats purchased, whatever lowers the seats.

For every organisation and SKU, at every commit: licenses held by assignments (pending, assigned,
removing) <= seats purchased on the active subscriptions of that SKU (counted as
:mod:`licensing.selectors.seats` says, queued reductions included). See decision 011.

- Assignments keep it from below (``license_assign``, bulk jobs: ``seats_free`` under the pool lock).
- Every portal path that lowers the seats (reduction, cancellation, suspension) calls
  :func:`seat_pool_guard` under the same pool row lock before it queues anything; a refusal is
  :class:`SeatsStillAssigned`, with the numbers. Staff may override it only with a reason, audited.
- Paths that lower seats later (a lower quantity scheduled for renewal, auto-renew off) are warned
  about with :func:`seat_pool_shortfall` when they are asked for; when they take effect, Microsoft
  has already changed the seats, and :func:`seat_pools_flag_over_assigned` (run by the hourly
  reconcile) marks the pool, tells the owner and license admins who holds the excess, and keeps
  the mark until it is resolved. Nothing here ever unassigns anyone.

Lock order: the subscription row first (the change services lock it), then the pool row, then
assignment rows; ``license_assign`` takes the pool then assignments. No path takes them the other way.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from core.audit import Actor, AuditEvent, audit_record
from licensing import nce
from licensing.models import LicenseAssignment, Notification, Subscription, TenantSku
from licensing.selectors.seats import pool_for_subscription, purchased_by_pool, seats_held

from .assignments import lock_seat_pools
from .notifications import LICENSE_ROLES, _recipients, notification_send

OVERRIDE_ACTORS = (AuditEvent.ActorType.STAFF, AuditEvent.ActorType.SYSTEM)


class SeatsStillAssigned(nce.RuleViolation):
    """A change would leave fewer seats than licenses held. Carries the numbers for the page and the API."""

    def __init__(self, *, pool: TenantSku, assigned: int, requested: int, verb: str = "reducing to"):
        self.pool = pool
        self.assigned = assigned
        self.requested = requested
        self.short = max(0, assigned - requested)
        noun = "license" if assigned == 1 else "licenses"
        seats = "seat" if requested == 1 else "seats"
        change = f"{verb} {requested} {seats} needs" if verb == "reducing to" else \
            f"{verb} leaves {requested} {seats} and needs"
        super().__init__(f"{pool.label} has {assigned} {noun} assigned; {change} {self.short} unassigned first.",
                         code="seats_assigned")

    def as_fields(self) -> dict:
        return {"assigned": self.assigned, "requested": self.requested, "short": self.short}


@dataclass(frozen=True)
class Shortfall:
    pool: TenantSku
    assigned: int
    requested: int

    @property
    def short(self) -> int:
        return max(0, self.assigned - self.requested)

    def refusal(self, verb: str = "reducing to") -> SeatsStillAssigned:
        return SeatsStillAssigned(pool=self.pool, assigned=self.assigned, requested=self.requested, verb=verb)


def seat_pool_shortfall(*, subscription: Subscription, new_quantity: int, releasing: int = 0,
                        lock: bool = False, exclude_operation=None) -> Shortfall | None:
    """What the subscription's pool would look like at ``new_quantity``; ``None`` when it has no pool in the
    tenant (nothing can be assigned from it). With ``lock``, the pool row is locked first (callers in a
    transaction that then queue the change)."""
    organization = subscription.organization_id
    pool = pool_for_subscription(subscription)
    if pool is None:
        return None
    if lock:
        pool = lock_seat_pools(organization, [pool])[pool.pk]
    requested = purchased_by_pool(organization, [pool], changes={subscription.pk: new_quantity},
                                  exclude_operation=exclude_operation)[pool.pk]
    assigned = seats_held(organization, pool) - releasing
    return Shortfall(pool=pool, assigned=max(0, assigned), requested=requested)


def override_accepted(actor: Actor, override_reason: str) -> bool:
    """Whether this actor may, with this reason, take seats from licenses held (staff and the system only).

    Queued changes carry the answer (``seat_check_overridden``) so that the check made again when the
    worker runs them (``recheck_seats``) honours the same override and nothing else.
    """
    return bool((override_reason or "").strip()) and actor.type in OVERRIDE_ACTORS


def seat_pool_guard(*, subscription: Subscription, new_quantity: int, actor: Actor, verb: str = "reducing to",
                    releasing: int = 0, override_reason: str = "") -> Shortfall | None:
    """Lock the pool and refuse a change that would leave fewer seats than licenses held.

    Call inside the change's transaction, after locking the subscription. Staff (or the system, e.g.
    a fraud response) may go ahead with ``override_reason``; the override is audited with the numbers.
    """
    shortfall = seat_pool_shortfall(subscription=subscription, new_quantity=new_quantity, releasing=releasing,
                                    lock=True)
    if shortfall is None or not shortfall.short:
        return shortfall
    reason = (override_reason or "").strip()
    if not reason:
        raise shortfall.refusal(verb)
    if actor.type not in OVERRIDE_ACTORS:
        raise nce.RuleViolation("Only reseller staff can override the seat check.", code="override_not_allowed")
    audit_record(actor=actor, action="seats.check_overridden", organization=subscription.organization_id,
                 target=subscription, metadata={"sku": str(shortfall.pool.sku_id), "assigned": shortfall.assigned,
                                                "requested": shortfall.requested, "short": shortfall.short,
                                                "reason": reason[:300]})
    return shortfall


# --- Microsoft-side drift: the reconcile's check ----------------------------------------------------------


def excess_holders(organization, pool: TenantSku, count: int) -> list[LicenseAssignment]:
    """The ``count`` most recent seat-holding assignments: the ones beyond what is purchased."""
    if count <= 0:
        return []
    return list(
        LicenseAssignment.objects.for_org(organization)
        .filter(sku=pool, state__in=LicenseAssignment.SEAT_HOLDING)
        .select_related("user").order_by("-assigned_at", "-created_at")[:count]
    )


def _link(organization, pool: TenantSku) -> str:
    try:
        return reverse("licensing:licenses", kwargs={"org_slug": organization.slug}) + f"#pool-{pool.pk}"
    except NoReverseMatch:
        return ""


@transaction.atomic
def seat_pools_flag_over_assigned(*, organization, now=None) -> dict:
    """Mark every pool where licenses held exceed seats purchased, clear the ones resolved, tell people.

    Run by the hourly reconcile, after Microsoft's view has been adopted. Never unassigns anyone:
    who loses a license is the customer's choice.
    """
    now = now or timezone.now()
    pools = lock_seat_pools(organization, TenantSku.objects.for_org(organization).values_list("pk", flat=True))
    if not pools:
        return {"flagged": 0, "resolved": 0}
    # As the seats are now: a queued portal reduction was checked when it was asked for.
    purchased = purchased_by_pool(organization, pools.values(), in_flight=False)
    counts = {"flagged": 0, "resolved": 0}
    system = Actor.system("reconcile")
    for pool in pools.values():
        held = seats_held(organization, pool)
        excess = max(0, held - purchased[pool.pk])
        if excess and pool.over_assigned_since is None:
            pool.over_assigned_since, pool.over_assigned_by = now, excess
            pool.save(update_fields=["over_assigned_since", "over_assigned_by", "updated_at"])
            counts["flagged"] += 1
            audit_record(actor=system, action="seats.over_assigned", organization=organization, target=pool,
                         metadata={"assigned": held, "purchased": purchased[pool.pk], "excess": excess})
            _notify(organization, pool, held=held, purchased=purchased[pool.pk], excess=excess)
        elif excess and excess != pool.over_assigned_by:
            pool.over_assigned_by = excess
            pool.save(update_fields=["over_assigned_by", "updated_at"])
            _notify(organization, pool, held=held, purchased=purchased[pool.pk], excess=excess)
        elif not excess and pool.over_assigned_since is not None:
            since = pool.over_assigned_since
            pool.over_assigned_since, pool.over_assigned_by = None, 0
            pool.save(update_fields=["over_assigned_since", "over_assigned_by", "updated_at"])
            counts["resolved"] += 1
            audit_record(actor=system, action="seats.over_assignment_resolved", organization=organization,
                         target=pool, metadata={"assigned": held, "purchased": purchased[pool.pk],
                                                "since": since.isoformat()})
    return counts


def _notify(organization, pool: TenantSku, *, held: int, purchased: int, excess: int) -> None:
    holders = excess_holders(organization, pool, excess)
    names = ", ".join(str(a.user) for a in holders)
    body = (
        f"{pool.label} has {held} licenses assigned but only {purchased} seats purchased: Microsoft lowered the "
        f"seats (a renewal at fewer seats, a suspension, an expiry or a change made in Partner Center). "
        f"Unassign {excess} license(s) or buy {excess} more seat(s). The most recent assignments hold the excess: "
        f"{names}. The portal does not unassign anyone by itself."
    )
    notification_send(
        organization=organization, recipients=_recipients(organization, LICENSE_ROLES),
        kind=Notification.Kind.OVER_ASSIGNED, level=Notification.Level.DANGER,
        title=f"{pool.label}: {excess} more license(s) assigned than purchased", body=body,
        link_url=_link(organization, pool),
        dedupe_key=f"over_assigned:{pool.pk}:{pool.over_assigned_since.isoformat()}:{excess}",
    )


def seat_warning_at_term_end(*, subscription: Subscription, quantity: int) -> str:
    """The warning for a change that lowers the seats when the term ends (a lower quantity scheduled for
    renewal, or auto-renew off: ``quantity=0``); empty when the licenses held still fit.

    The change is not refused: the term is months away and people leave. When it takes effect the
    reconcile checks again and marks the pool if it is over-assigned then.
    """
    shortfall = seat_pool_shortfall(subscription=subscription, new_quantity=quantity)
    if shortfall is None or not shortfall.short:
        return ""
    when = f" on {subscription.commitment_end:%d %b %Y}" if subscription.commitment_end else ""
    event = "renewal" if quantity else "end of the term"
    return (f"{shortfall.pool.label} has {shortfall.assigned} licenses assigned; after the {event}{when} it will "
            f"have {shortfall.requested} seats. Unassign {shortfall.short} before then, or the licenses will be "
            f"marked over-assigned until you do.")
