"""What a license admin checks first, for the overview page: seats per license, monthly spend, renewals in
the next 30 days, anything failed or waiting, and inactive licenses worth reclaiming. Constant queries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Q
from django.utils import timezone

from licensing.models import Order, ProvisioningOperation, Subscription

from .seats import organization_subscriptions
from .usage import (
    LIVE_SUBSCRIPTION,
    CalendarEntry,
    PoolRow,
    inactive_assignments,
    monthly_unit_prices,
    pool_rows,
    renewal_calendar,
)

RENEWAL_HORIZON_DAYS = 30
FAILED_WINDOW_DAYS = 30
# A license with at most this share of its seats free is worth topping up before someone needs one.
LOW_FREE_SHARE = Decimal("0.10")


@dataclass
class Suggestion:
    """"Buy 3 more Business Premium": the pool, how many, and why (the page adds the link)."""

    pool: PoolRow
    seats: int
    reason: str
    url: str = ""


@dataclass
class LicenseOverview:
    pools: list[PoolRow]
    monthly_spend: dict[str, Decimal]
    renewals: list[CalendarEntry]
    failed_operations: int
    waiting_operations: int
    failed_assignments: int
    orders_awaiting_approval: int
    reclaimable: int
    reclaimable_cost: dict[str, Decimal]
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        return bool(self.failed_operations or self.failed_assignments or self.orders_awaiting_approval)


def monthly_spend(organization, *, subscriptions: list[Subscription] | None = None) -> dict[str, Decimal]:
    """The Subscriptions page's monthly cost column summed per currency, over live subscriptions. One query, none
    given ``subscriptions`` (:func:`licensing.selectors.seats.organization_subscriptions`)."""
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    if subscriptions is None:
        subscriptions = Subscription.objects.for_org(organization).filter(status__in=LIVE_SUBSCRIPTION).only(
            "quantity", "unit_price", "billing_cycle", "currency")
    else:
        subscriptions = [sub for sub in subscriptions if sub.status in LIVE_SUBSCRIPTION]
    for sub in subscriptions:
        totals[sub.currency] += sub.monthly_cost
    return dict(totals)


def buy_suggestions(rows: list[PoolRow]) -> list[Suggestion]:
    """Licenses that are full, over-assigned or nearly full: buy enough for the shortfall plus 10% headroom."""
    suggestions = []
    for row in rows:
        if not row.sku.applies_to_users or row.state == "suspended" or (row.usable <= 0 and row.assigned == 0):
            continue
        headroom = max(1, int((Decimal(row.usable) * LOW_FREE_SHARE).to_integral_value(ROUND_HALF_UP)))
        if row.available < 0:
            suggestions.append(Suggestion(row, -row.available + headroom,
                                          f"{-row.available} more assigned than purchased"))
        elif row.available == 0:
            suggestions.append(Suggestion(row, headroom, "no seats free"))
        elif row.available < headroom:
            suggestions.append(Suggestion(row, headroom - row.available,
                                          f"only {row.available} seat{'s' if row.available != 1 else ''} free"))
    return suggestions


def license_overview(organization, *, now: datetime | None = None,
                     subscriptions: list[Subscription] | None = None) -> LicenseOverview:
    """The overview's license figures (see the module's docstring). The subscriptions are read once (or given:
    :func:`organization_subscriptions`) for the prices, seats, renewals and spend."""
    now = now or timezone.now()
    subscriptions = organization_subscriptions(organization) if subscriptions is None else subscriptions
    prices = monthly_unit_prices(organization, subscriptions=subscriptions)
    rows = pool_rows(organization, prices=prices, subscriptions=subscriptions)
    last_day = (now + timedelta(days=RENEWAL_HORIZON_DAYS)).date()
    renewals = [e for e in renewal_calendar(organization, months=2, now=now, subscriptions=subscriptions)
                if (e.renews_on if e.auto_renew else e.term_ends_on) <= last_day]
    operations = ProvisioningOperation.objects.for_org(organization)
    since = now - timedelta(days=FAILED_WINDOW_DAYS)
    counts = operations.aggregate(
        failed=_count(Q(status__in=[ProvisioningOperation.Status.FAILED, ProvisioningOperation.Status.DEAD],
                        finished_at__gte=since)),
        waiting=_count(Q(status__in=[ProvisioningOperation.Status.PENDING, ProvisioningOperation.Status.RUNNING])),
    )
    # Counted per SKU in the database: one row per product, however many licenses sit idle.
    inactive = list(inactive_assignments(organization, now=now).order_by().values_list("sku__sku_id").annotate(
        n=Count("pk")))
    cost: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for sku_id, count in inactive:
        price, currency = prices.get(str(sku_id).lower(), (None, ""))
        if price is not None:
            cost[currency] += price * count
    return LicenseOverview(
        pools=rows,
        monthly_spend=monthly_spend(organization, subscriptions=subscriptions),
        renewals=renewals,
        failed_operations=counts["failed"],
        waiting_operations=counts["waiting"],
        # From the pools' tallies (read with the rows above), not a count over every assignment.
        failed_assignments=sum(row.sku.failed_count for row in rows),
        orders_awaiting_approval=Order.objects.for_org(organization).filter(
            status=Order.Status.AWAITING_APPROVAL).count(),
        reclaimable=sum(count for _, count in inactive),
        reclaimable_cost=dict(cost),
        suggestions=buy_suggestions(rows),
    )


def _count(condition: Q) -> Count:
    return Count("pk", filter=condition)
