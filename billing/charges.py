"""What a subscription owes, as pure functions of its rows and a cut-off time: no database, no clock.

The billing run (services/invoices.py) turns these into invoice lines. Each charge has a ``key``
that names what it bills (a subscription's period, a batch's proration, a batch's refund); the
database refuses a key twice per organisation, which is what makes the run idempotent.

Microsoft's rules, followed here:
- A subscription is charged at the start of each billing period (monthly, annual, or triennial
  up front), for the seats it has then, at the price it was bought at (price protection).
- Seats added mid-period are co-termed: charged by day, for the days left in the current billing
  period (``licensing.nce.billing_period``), and then with the subscription from the next period.
- Seats removed inside their 7-day window, and cancellations inside the subscription's window, are
  credited by ``licensing.nce.removal_credit`` (the line for the seats before minus the line for the
  seats after, for the UTC days left in the charge cycle, each rounded down once; in full inside 24
  hours), the same function the reduction simulator uses, so the credit matches the quote.
- A cancelled subscription is not charged for periods that start after its cancellation; an
  expired or disabled one not after its commitment ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from billing.money import round_line
from licensing import nce

CHARGE, PRORATION, REFUND, CONSUMPTION = "charge", "proration", "refund", "consumption"
RENEWAL_SOURCE = "renewal"


@dataclass(frozen=True)
class Charge:
    kind: str
    key: str
    dated: datetime  # when it happened: the period start, the addition, the refund
    quantity: int
    unit_price: Decimal
    amount: Decimal  # rounded once; negative for refunds
    period_start: datetime
    period_end: datetime
    explanation: str
    # For charges without a licensing subscription (Azure consumption): what the line names instead.
    ms_subscription_id: str = ""
    description: str = ""


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _d(moment: datetime) -> str:
    return utc_day(moment).isoformat()


def billing_periods(anchor: datetime, billing_cycle: str, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Billing periods from the term start (a whole UTC day) whose start is before ``until``."""
    months = nce.CYCLE_MONTHS[billing_cycle]
    first = midnight(utc_day(anchor))
    index = 0
    while True:
        start = nce.add_months(first, index * months)
        if start >= until:
            return
        yield start, nce.add_months(first, (index + 1) * months)
        index += 1


def prorated_charge(*, unit_price: Decimal, quantity: int, charged_days: int, period_days: int) -> Decimal:
    """Seats for part of a billing period, by day: rounded once, half up, to the cent."""
    return round_line(unit_price * quantity * Decimal(charged_days) / Decimal(max(1, period_days)))


def current_batches(batches: Iterable, moment: datetime) -> list:
    """Batches of the term running at ``moment``: those added by that day, from the last renewal on."""
    day = utc_day(moment)
    eligible = [b for b in batches if utc_day(b.added_at) <= day]
    renewals = [b for b in eligible if b.source == RENEWAL_SOURCE]
    if renewals:
        last = max(renewals, key=lambda b: b.added_at)
        eligible = [b for b in eligible if b.added_at >= last.added_at]
    return eligible


def subscription_charges(*, subscription, batches: list, until: datetime, ends_at: datetime | None,
                         cancelled_at: datetime | None, refunded_before: dict | None = None) -> list[Charge]:
    """Everything ``subscription`` owes or is owed, dated before ``until``.

    ``ends_at``: no period starting at or after it is charged (cancellation, expiry), or None.
    ``cancelled_at``: when it was cancelled, if it was, so an in-window cancellation is refunded.
    ``refunded_before``: batch pk -> seats already credited, so a later removal credits only the new seats.
    """
    sub = subscription
    if sub.start_date is None or sub.billing_cycle not in nce.CYCLE_MONTHS or not sub.unit_price:
        return []
    unit, cycle, anchor = sub.unit_price, sub.billing_cycle, sub.start_date
    stop = min(until, ends_at) if ends_at else until
    charges: list[Charge] = []
    for start, end in billing_periods(anchor, cycle, stop):
        seats = sum(b.quantity - b.refunded for b in current_batches(batches, start))
        if seats <= 0:
            continue
        amount = round_line(unit * seats)
        charges.append(Charge(
            CHARGE, f"charge:{sub.pk}:{start.date().isoformat()}", start, seats, unit, amount, start, end,
            f"{seats} seat{'s' if seats != 1 else ''} × {sub.currency} {unit} for the billing period "
            f"{_d(start)} to {_d(end)} (billed {cycle}).",
        ))
    for batch in batches:
        if batch.source == RENEWAL_SOURCE or batch.added_at >= stop:
            continue
        start, end = nce.billing_period(batch.added_at, cycle, anchor)
        if utc_day(batch.added_at) <= utc_day(start):
            continue  # added on the period's first day: charged with the subscription's period
        period_days = (utc_day(end) - utc_day(start)).days
        charged_days = (utc_day(end) - utc_day(batch.added_at)).days
        amount = prorated_charge(unit_price=unit, quantity=batch.quantity, charged_days=charged_days,
                                 period_days=period_days)
        charges.append(Charge(
            PRORATION, f"prorate:{batch.pk}", batch.added_at, batch.quantity, unit, amount, batch.added_at, end,
            f"{batch.quantity} seat{'s' if batch.quantity != 1 else ''} added on {_d(batch.added_at)}: "
            f"{charged_days} of the {period_days} days of the billing period {_d(start)} to {_d(end)} "
            f"× {sub.currency} {unit} per seat.",
        ))
    charges.extend(_refunds(sub, batches, until=until, cancelled_at=cancelled_at,
                            refunded_before=refunded_before or {}))
    return charges


def _refund_charge(sub, batch, seats: int, seats_before: int, refund_at: datetime, key: str, why: str) -> Charge:
    # The same rule as the reduction simulator (licensing.nce.plan_reduction): Microsoft credits the old
    # count's line minus the new count's line, each rounded down once, so the credit note and the
    # simulator agree to the cent.
    credit = nce.removal_credit(unit_price=sub.unit_price, billing_cycle=sub.billing_cycle,
                                anchor=sub.start_date or batch.added_at, added_at=batch.added_at, now=refund_at,
                                seats_before=seats_before, seats_removed=seats)
    per_seat = (credit / seats).quantize(nce.CENT) if seats else Decimal("0.00")
    _, end = nce.billing_period(batch.added_at, sub.billing_cycle, sub.start_date)
    return Charge(
        REFUND, key, refund_at, seats, per_seat, -credit, batch.added_at, end,
        f"{seats} seat{'s' if seats != 1 else ''} added on {_d(batch.added_at)} {why} on {_d(refund_at)}, "
        f"inside the 7-day window: {sub.currency} {credit} back for the days not used "
        f"(Microsoft's lines for the seat count before and after, each rounded down to the cent).",
    )


def _refunds(sub, batches: list, *, until: datetime, cancelled_at: datetime | None,
             refunded_before: dict) -> list[Charge]:
    refunds = []
    removals = []
    for batch in batches:
        seats = batch.refunded - refunded_before.get(batch.pk, 0)
        if seats <= 0:
            continue
        # When the seats came off: the batch's last change, which closed its window early.
        refund_at = min(batch.updated_at, batch.refundable_until)
        if refund_at >= until:
            continue
        removals.append((refund_at, batch, seats))
    # One reduction takes seats from the newest batches first, the count falling as it goes, as
    # plan_reduction does; the count before a reduction is today's plus everything it removed.
    by_moment: dict[datetime, list] = {}
    for refund_at, batch, seats in removals:
        by_moment.setdefault(refund_at, []).append((batch, seats))
    for refund_at, taken in sorted(by_moment.items(), key=lambda item: item[0]):
        seats_left = sub.quantity + sum(seats for _, seats in taken)
        for batch, seats in sorted(taken, key=lambda pair: pair[0].added_at, reverse=True):
            # The key carries the running count of refunded seats, so each later removal has a key of its own.
            refunds.append(_refund_charge(sub, batch, seats, seats_left, refund_at,
                                          f"refund:{batch.pk}:{batch.refunded}", "removed"))
            seats_left -= seats
    window = sub.cancellation_allowed_until
    if cancelled_at and cancelled_at < until and window and cancelled_at <= window:
        live = [(b, b.quantity - b.refunded) for b in current_batches(batches, cancelled_at)]
        seats_left = sum(seats for _, seats in live if seats > 0)
        for batch, seats in sorted(live, key=lambda pair: pair[0].added_at, reverse=True):
            if seats > 0:
                refunds.append(_refund_charge(sub, batch, seats, seats_left, cancelled_at, f"cancel:{batch.pk}",
                                              "cancelled"))
                seats_left -= seats
    return refunds
