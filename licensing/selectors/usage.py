"""Reads for seats, usage, waste and renewals. Tenant-scoped; query counts do not grow with the data.

Seats assigned are counted from our assignments table (what the portal holds or has
seen in the tenant); purchased seats come from the tenant's subscribed SKUs. A tenant SKU
links to the customer's subscriptions through the catalog SKU's ``provisioning_id`` (the
Graph skuId).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.field_locks import restricted_object_ids
from licensing import nce
from licensing.models import (
    AssignmentTally,
    DirectoryUser,
    LicenseAssignment,
    ServicePlan,
    Subscription,
    TenantSku,
    UsageSnapshot,
    inactive_since,
)

from .seats import organization_subscriptions, purchased_by_pool, seats_purchased
from .settings import licensing_settings

ZERO = Decimal("0.00")
SEAT_HOLDING = LicenseAssignment.SEAT_HOLDING
LIVE_SUBSCRIPTION = (Subscription.Status.ACTIVE, Subscription.Status.PENDING)


def _tallied(*states: str):
    """The sum of the pool's tally columns for ``states`` (0 for a pool with no assignment yet)."""
    total = None
    for state in states:
        column = Coalesce(F(f"tally__{state}"), 0)
        total = column if total is None else total + column
    return total


def seat_pools(organization) -> QuerySet[TenantSku]:
    """Tenant SKUs with ``assigned_count`` (seats held), ``pending_count`` and ``failed_count``: one query, one
    row per pool, read from the assignment tallies (decision 038) rather than counting every assignment."""
    State = LicenseAssignment.State
    return TenantSku.objects.for_org(organization).annotate(
        assigned_count=_tallied(*SEAT_HOLDING),
        pending_count=_tallied(State.PENDING, State.REMOVING),
        failed_count=_tallied(State.FAILED),
    ).order_by("display_name", "sku_part_number")


def license_choices(organization) -> QuerySet[TenantSku]:
    """The license picker's pools, each with ``assigned_count`` so its label can say "3 of 25 free". One query."""
    return seat_pools(organization)


def license_choice_label(pool: TenantSku) -> str:
    """"Microsoft 365 Business Premium, 3 of 25 free" (``pool`` from :func:`license_choices`)."""
    free = max(0, pool.purchased - getattr(pool, "assigned_count", 0))
    return f"{pool.label}, {free} of {pool.purchased} free"


def service_plan_choices(pool: TenantSku) -> list[tuple[str, str]]:
    """The chosen license's service plans as (id, friendly name), sorted by name. One query.

    Names come from Microsoft's product names file (``ServicePlan``, kept by the catalog sync); a plan
    the file does not know yet shows its code."""
    plans = [(str(p["id"]).lower(), p.get("name") or str(p["id"])) for p in pool.service_plans or [] if p.get("id")]
    names = dict(
        ServicePlan.objects.filter(service_plan_id__in=[_uuid_or_none(i) for i, _ in plans if _uuid_or_none(i)])
        .values_list("service_plan_id", "friendly_name")
    )
    named = [(i, names.get(_uuid_or_none(i)) or code) for i, code in plans]
    return sorted(named, key=lambda c: c[1].lower())


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def seats_in_use(organization, sku: TenantSku) -> int:
    held = LicenseAssignment.objects.for_org(organization).filter(sku=sku, state__in=LicenseAssignment.SEAT_HOLDING)
    return held.count()


def seats_free(organization, sku: TenantSku) -> int:
    """Seats left to assign: purchased as the seat invariant counts them (queued reductions included)."""
    return seats_purchased(organization, sku) - seats_in_use(organization, sku)


def assigned_seats_by_sku(organization) -> dict[str, int]:
    """Seats held per Graph skuId (lower-case string), from the assignment tallies. One query, one row per pool."""
    rows = (
        AssignmentTally.objects.for_org(organization)
        .annotate(n=sum((F(state) for state in SEAT_HOLDING[1:]), F(SEAT_HOLDING[0])))
        .filter(n__gt=0)
        .values_list("sku__sku_id", "n")
    )
    return {str(sku_id).lower(): n for sku_id, n in rows}


def _live_subscriptions_by_sku(organization, subscriptions: list[Subscription] | None = None,
                               ) -> dict[str, list[Subscription]]:
    grouped: dict[str, list[Subscription]] = defaultdict(list)
    if subscriptions is None:
        subscriptions = (
            Subscription.objects.for_org(organization)
            .filter(status__in=LIVE_SUBSCRIPTION, sku__isnull=False)
            .select_related("sku")
            .order_by("start_date", "created_at")
        )
    else:
        subscriptions = [sub for sub in subscriptions if sub.status in LIVE_SUBSCRIPTION and sub.sku_id is not None]
    for sub in subscriptions:
        if sub.sku.provisioning_id:
            grouped[sub.sku.provisioning_id.lower()].append(sub)
    return grouped


def oldest_start_first(subscriptions) -> list[Subscription]:
    """``subscriptions`` in the order ``order_by("start_date", "created_at")`` reads them: a missing start date
    where the database puts it (after every date on PostgreSQL, before on SQLite)."""
    missing_last = connection.features.nulls_order_largest

    def key(sub: Subscription):
        missing = sub.start_date is None
        return (missing == missing_last, sub.start_date or datetime.min, sub.created_at)

    return sorted(subscriptions, key=key)


def assigned_seats_by_subscription(organization, *, subscriptions: list[Subscription] | None = None) -> dict:
    """Seats assigned per subscription id. Two queries; one given ``subscriptions``, every subscription of the
    organisation in any order with its catalog SKU (a list page that holds them all: :func:`every_subscription_on`).

    Microsoft pools seats of the same SKU across subscriptions, so assignments are spread
    over them oldest first, each up to its quantity; any excess lands on the newest.
    """
    assigned = assigned_seats_by_sku(organization)
    if subscriptions is not None:
        subscriptions = oldest_start_first(subscriptions)
    result: dict = {}
    for sku_id, of_sku in _live_subscriptions_by_sku(organization, subscriptions).items():
        remaining = assigned.get(sku_id, 0)
        for sub in of_sku:
            taken = min(remaining, sub.quantity)
            result[sub.pk] = taken
            remaining -= taken
        if remaining and of_sku:
            result[of_sku[-1].pk] += remaining
    return result


def every_subscription_on(page, *, filtered: bool) -> list[Subscription] | None:
    """The subscriptions of a list page when they are every subscription the organisation has (no filter, no
    other page), for :func:`assigned_seats_by_subscription` to spread the seats over without reading them again;
    else None."""
    if filtered or page.has_other_pages():
        return None
    return list(page.object_list)


def monthly_unit_prices(organization, *, subscriptions: list[Subscription] | None = None,
                        ) -> dict[str, tuple[Decimal, str]]:
    """Monthly price of one seat per Graph skuId: the quantity-weighted average over live subscriptions.
    One query, none given ``subscriptions`` (:func:`licensing.selectors.seats.organization_subscriptions`).

    Prices in different currencies are never averaged together. When one SKU is bought in several
    currencies, the figure is that of the currency holding most of its seats (the oldest on a tie).
    """
    prices = {}
    for sku_id, of_sku in _live_subscriptions_by_sku(organization, subscriptions).items():
        by_currency: dict[str, list[Subscription]] = defaultdict(list)
        for sub in of_sku:
            by_currency[sub.currency].append(sub)
        currency, group = max(by_currency.items(), key=lambda item: sum(s.quantity for s in item[1]))
        seats = sum(s.quantity for s in group)
        if not seats:
            continue
        total = sum(nce.monthly_equivalent(s.unit_price, s.billing_cycle) * s.quantity for s in group)
        prices[sku_id] = ((total / seats).quantize(nce.CENT, rounding=ROUND_HALF_UP), currency)
    return prices


def suspended_seats_by_sku(organization, *, subscriptions: list[Subscription] | None = None) -> dict[str, int]:
    """Seats of suspended subscriptions per Graph skuId (lower-case): what the portal knows before Graph says so.
    One query, none given ``subscriptions`` (:func:`licensing.selectors.seats.organization_subscriptions`)."""
    if subscriptions is None:
        rows = (
            Subscription.objects.for_org(organization)
            .filter(status=Subscription.Status.SUSPENDED, sku__isnull=False)
            .values_list("sku__provisioning_id", "quantity")
        )
    else:
        rows = [(sub.sku.provisioning_id, sub.quantity) for sub in subscriptions
                if sub.status == Subscription.Status.SUSPENDED and sub.sku_id is not None]
    result: dict[str, int] = defaultdict(int)
    for provisioning_id, quantity in rows:
        if provisioning_id:
            result[provisioning_id.lower()] += quantity
    return dict(result)


@dataclass
class PoolRow:
    sku: TenantSku
    purchased: int
    assigned: int
    available: int
    unit_price_monthly: Decimal | None
    currency: str
    unassigned_cost_monthly: Decimal | None
    # Seats bought but suspended: paid for, not assignable (the Subscriptions page shows the same seats
    # as "0 / 5, Suspended"; here they count as purchased, with the state beside them).
    suspended: int = 0
    # Where to buy more of this license (set by the page that offers it).
    buy_url: str = ""

    @property
    def utilisation(self) -> int:
        return round(self.assigned * 100 / self.purchased) if self.purchased else 0

    @property
    def usable(self) -> int:
        return self.purchased - self.suspended

    @property
    def state(self) -> str:
        """"active", "suspended" (every seat) or "partly_suspended"."""
        if not self.suspended:
            return "active"
        return "suspended" if self.suspended >= self.purchased else "partly_suspended"


def pool_rows(organization, *, prices: dict[str, tuple[Decimal, str]] | None = None,
              subscriptions: list[Subscription] | None = None) -> list[PoolRow]:
    """Seats per SKU with the monthly cost of what is not assigned. Two queries: the organisation's subscriptions
    (read once for the prices, the suspended and the purchased seats), and the pools with their tallies; one
    given ``subscriptions`` (:func:`licensing.selectors.seats.organization_subscriptions`) a page has read already.

    Usable seats are those of the seat invariant (:mod:`licensing.selectors.seats`) as they are now, so
    every page and the API agree with the subscriptions (a queued reduction shows once it is done).
    ``purchased`` adds the suspended seats, so a suspended subscription is shown, with its state;
    ``available`` counts only usable ones."""
    subscriptions = organization_subscriptions(organization) if subscriptions is None else subscriptions
    prices = monthly_unit_prices(organization, subscriptions=subscriptions) if prices is None else prices
    suspended_by_sku = suspended_seats_by_sku(organization, subscriptions=subscriptions)
    rows = []
    pools = list(seat_pools(organization))
    purchased_of = purchased_by_pool(organization, pools, in_flight=False, subscriptions=subscriptions)
    for sku in pools:
        purchased = purchased_of[sku.pk]
        price, currency = prices.get(str(sku.sku_id).lower(), (None, ""))
        suspended = max(sku.suspended, suspended_by_sku.get(str(sku.sku_id).lower(), 0))
        usable = purchased  # active subscriptions only: suspended seats are never usable
        unassigned = max(0, usable - sku.assigned_count)
        unassigned_cost = (price * unassigned).quantize(nce.CENT, rounding=ROUND_HALF_UP) if price is not None else None
        rows.append(PoolRow(
            sku=sku, purchased=usable + suspended, assigned=sku.assigned_count, available=usable - sku.assigned_count,
            unit_price_monthly=price, currency=currency,
            unassigned_cost_monthly=unassigned_cost, suspended=suspended,
        ))
    return rows


def unassigned_cost_total(rows: list[PoolRow]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for row in rows:
        if row.unassigned_cost_monthly:
            totals[row.currency] += row.unassigned_cost_monthly
    return dict(totals)


def usage_history(organization, *, days: int = 90, today: date | None = None) -> list[dict]:
    """Chart series: one per SKU (``tenant_sku_id``, its ``label``) of (day, assigned) and the purchased line,
    over ``days``. One query, of plain values: a year of daily snapshots is thousands of rows, each of which
    built two model instances (the snapshot and its SKU, with the SKU's service plans parsed from JSON)."""
    today = today or timezone.now().date()
    start = today - timedelta(days=days - 1)
    snapshots = (
        UsageSnapshot.objects.for_org(organization).filter(day__gte=start, day__lte=today)
        .order_by("sku__display_name", "day")
        .values_list("sku_id", "sku__display_name", "sku__sku_part_number", "sku__sku_id", "day", "assigned",
                     "purchased")
    )
    series: dict = {}
    for sku_pk, display_name, part_number, sku_id, day, assigned, purchased in snapshots:
        entry = series.get(sku_pk)
        if entry is None:
            label = TenantSku.label_of(display_name, part_number, sku_id)
            entry = series[sku_pk] = {"tenant_sku_id": sku_pk, "label": label, "points": [], "purchased": []}
        day = day.isoformat()
        entry["points"].append((day, assigned))
        entry["purchased"].append((day, purchased))
    return list(series.values())


def inactive_assignments(organization, *, days: int | None = None, now: datetime | None = None) -> QuerySet:
    """Assigned licenses of users with no sign-in for ``days`` (never signed in counts, once the user is that old).

    Users whose processing is restricted (GDPR Art. 18) are left out: profiling their activity is not
    needed to store their data.
    """
    days = days or licensing_settings(organization).inactive_days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return (
        LicenseAssignment.objects.for_org(organization)
        .exclude(user_id__in=list(restricted_object_ids(organization, DirectoryUser)))
        .filter(state=LicenseAssignment.State.ASSIGNED, user__removed_at__isnull=True, sku__applies_to_users=True)
        # The user's organisation as well as the assignment's: the activity index leads with it.
        .filter(inactive_since(cutoff, "user__"), user__organization=organization)
        .select_related("user", "sku")
        .order_by("sku__display_name", "user__last_sign_in_at", "pk")
    )


@dataclass
class CalendarEntry:
    subscription: Subscription
    term_ends_on: date
    renews_on: date
    last_day_to_reduce: date
    window_closes_on: date
    auto_renew: bool
    quantity: int
    projected_cost: Decimal
    currency: str
    scheduled_change: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "renewal" if self.auto_renew else "expiry"


def renewal_calendar(organization, *, months: int = 12, now: datetime | None = None,
                     subscriptions: list[Subscription] | None = None) -> list[CalendarEntry]:
    """Every renewal in the next ``months``: the renewal day, the last day to reduce (schedule a change for the
    next term), the day the new term's cancellation window closes, and the projected cost of the next term's
    first billing period. Monthly terms renew every month and appear once per month. One query, none given
    ``subscriptions`` (:func:`licensing.selectors.seats.organization_subscriptions`): the entries are sorted
    in full at the end, so the order they are read in does not matter."""
    now = now or timezone.now()
    horizon = nce.add_months(now, months)
    entries = []
    if subscriptions is None:
        subscriptions = (
            Subscription.objects.for_org(organization)
            .filter(status__in=LIVE_SUBSCRIPTION, commitment_end__isnull=False)
            .order_by("commitment_end")
        )
    else:
        subscriptions = [sub for sub in subscriptions
                         if sub.status in LIVE_SUBSCRIPTION and sub.commitment_end is not None]
    for sub in subscriptions:
        end = sub.commitment_end
        while end <= horizon:
            if end >= now:
                entries.append(_entry(sub, end))
            if not sub.auto_renew or sub.term_duration not in nce.TERM_MONTHS:
                break
            end = nce.term_end(nce.renewal_date(end), sub.term_duration)
    entries.sort(key=lambda e: (e.renews_on, str(e.subscription.pk)))
    return entries


def _entry(sub: Subscription, end: datetime) -> CalendarEntry:
    renews = nce.renewal_date(end)
    scheduled = sub.scheduled_next_term or None
    quantity = int((scheduled or {}).get("quantity") or sub.quantity)
    cost = (sub.unit_price * quantity).quantize(nce.CENT, rounding=ROUND_HALF_UP)
    notes = []
    if not sub.auto_renew:
        notes.append("Auto-renew is off: the licenses expire at the end of the term.")
    if scheduled:
        notes.append(f"Scheduled for the next term: {quantity} seat(s).")
    return CalendarEntry(
        subscription=sub, term_ends_on=nce.term_ends_on(end), renews_on=nce.renews_on(end),
        last_day_to_reduce=nce.last_day_to_reduce(end),
        window_closes_on=(nce.refund_window_end(renews) - timedelta(seconds=1)).date(), auto_renew=sub.auto_renew,
        quantity=quantity, projected_cost=cost if sub.auto_renew else Decimal("0.00"), currency=sub.currency,
        scheduled_change=scheduled, notes=notes,
    )


def calendar_months(entries: list[CalendarEntry], *, now: datetime | None = None, months: int = 12) -> list[dict]:
    """The entries grouped by month, every month present (empty ones too), with the month's projected cost."""
    now = now or timezone.now()
    grouped = []
    for offset in range(months + 1):
        month = nce.add_months(now.replace(day=1), offset).date()
        items = [e for e in entries if (e.renews_on.year, e.renews_on.month) == (month.year, month.month)]
        totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for e in items:
            totals[e.currency] += e.projected_cost
        grouped.append({"month": month, "entries": items, "totals": dict(totals)})
    return grouped


def tenant_sku_by_graph_id(organization, sku_id) -> TenantSku | None:
    try:
        return TenantSku.objects.for_org(organization).filter(sku_id=uuid.UUID(str(sku_id))).first()
    except ValueError:
        return None


def live_subscriptions_for_sku(organization, sku: TenantSku) -> list[Subscription]:
    return _live_subscriptions_by_sku(organization).get(str(sku.sku_id).lower(), [])
