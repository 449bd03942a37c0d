"""New Commerce rules as pure functions of time and numbers: windows, refunds, terms.

No database and no clock of their own: callers pass ``now``. Tests freeze time and
check every edge (reference csp-market.md §0, microsoft-apis.md §2.5).

- A license subscription can be cancelled within 7 days (168 hours) of purchase or renewal.
- Seats can be removed only from batches added within the last 7 days; each batch of
  seats (purchase, later addition, renewal) has its own window.
- Outside those windows a reduction can only be scheduled for the next term.
- Any immediate change made mid-term deletes the scheduled next-term changes.

Money follows Microsoft's worked examples (docs/decisions/010-nce-refund-arithmetic.md):

- A *charge cycle* starts on the UTC calendar day the subscription was bought or renewed and recurs on
  that day of the month, counted from that anchor (a shorter month ends the cycle on its last day).
- *Charge cycle days* are the days in that cycle; *billing days* run from the day of the event (a
  purchase, an addition, a removal) to the end of the cycle, that day included. Days are UTC calendar
  days, never elapsed hours.
- Each billing line is ``unit price / charge cycle days x billing days x billable quantity``, rounded
  down to the cent once per line, never per seat.
- Changing seats wipes the old count and recreates the new one for the rest of the cycle; the refund
  is the difference, so it always comes from the cycle that contains the day of the change.
- Within 24 hours of buying seats (purchase, renewal or addition) their refund is full: everything
  charged for them in the current cycle. After that, and up to 7 days, it is prorated.
- Upgrades open no window of their own: a partial upgrade's new subscription inherits the source's.
  An upgrade is billed as ``convert`` lines for the days left in the cycle that contains today: the
  source is credited the moved seats at its price, the target charged them at its price, each line
  rounded once; a partial upgrade's new subscription is never charged as a fresh purchase.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Protocol

REFUND_WINDOW = timedelta(days=7)
FULL_REFUND_WINDOW = timedelta(hours=24)
CENT = Decimal("0.01")

TERM_MONTHS = {"P1M": 1, "P1Y": 12, "P3Y": 36}
CYCLE_MONTHS = {"monthly": 1, "annual": 12, "triennial": 36}
# Which billing frequencies each term allows (a billing period never exceeds the term).
TERM_BILLING = {"P1M": ("monthly",), "P1Y": ("monthly", "annual"), "P3Y": ("monthly", "annual", "triennial")}

TERM_WORDS = {"P1M": "one month", "P1Y": "one year", "P3Y": "three years"}
CYCLE_WORDS = {"monthly": "every month", "annual": "once a year, up front", "triennial": "once every three years"}


class BatchLike(Protocol):
    quantity: int
    refunded: int
    added_at: datetime
    refundable_until: datetime


class RuleViolation(ValueError):
    """A request New Commerce does not allow, with a message that says what to do instead."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def refund_window_end(added_at: datetime) -> datetime:
    return added_at + REFUND_WINDOW


def term_end(start: datetime, term_duration: str) -> datetime:
    """Last moment of the commitment: the day before the same date one term later, 23:59:59 UTC."""
    last_day = (add_months(start.astimezone(UTC), TERM_MONTHS[term_duration]) - timedelta(days=1)).date()
    return datetime(last_day.year, last_day.month, last_day.day, 23, 59, 59, tzinfo=UTC)


def renewal_date(commitment_end: datetime) -> datetime:
    """Renewal starts at 00:00 UTC after the last day of the term."""
    day = commitment_end.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# The three dates a customer acts on, defined once. Microsoft's ``commitmentEndDate`` is the last day
# of the term (a calendar day in UTC); the subscription renews on the day after it. Every page, e-mail,
# CSV, API field and admin column takes its dates from these functions, and shows them as calendar days,
# never shifted into a time zone (a shift would move them a day either side of Microsoft's).
TERM_ENDS_LABEL = "Term ends"
RENEWS_ON_LABEL = "Renews on"
LAST_DAY_TO_REDUCE_LABEL = "Last day to reduce"


def end_of_last_day(last_day: date) -> datetime:
    """The stored ``commitment_end`` for a term whose last day is ``last_day``: 23:59:59 UTC that day."""
    return datetime(last_day.year, last_day.month, last_day.day, 23, 59, 59, tzinfo=UTC)


def term_ends_on(commitment_end: datetime) -> date:
    """"Term ends": the last day of the commitment, Microsoft's commitmentEndDate."""
    return commitment_end.astimezone(UTC).date()


def renews_on(commitment_end: datetime) -> date:
    """"Renews on": the day after the term's last day, when the new term (and its 7-day window) starts."""
    return term_ends_on(commitment_end) + timedelta(days=1)


def last_day_to_reduce(commitment_end: datetime) -> date:
    """"Last day to reduce": a smaller quantity must be scheduled by the end of the term's last day (UTC);
    after renewal, only seats inside their new 7-day window can come off."""
    return term_ends_on(commitment_end)


@dataclass(frozen=True)
class TermDates:
    term_ends_on: date
    renews_on: date
    last_day_to_reduce: date


def term_dates(commitment_end: datetime | None) -> TermDates | None:
    if commitment_end is None:
        return None
    return TermDates(term_ends_on(commitment_end), renews_on(commitment_end), last_day_to_reduce(commitment_end))


def validate_term(term_duration: str, billing_cycle: str) -> None:
    if term_duration not in TERM_BILLING:
        raise RuleViolation(f"Unknown term {term_duration!r}.", code="invalid_term")
    if billing_cycle not in TERM_BILLING[term_duration]:
        allowed = ", ".join(TERM_BILLING[term_duration])
        raise RuleViolation(
            f"A {TERM_WORDS[term_duration]} term can be billed {allowed}, not {billing_cycle}.",
            code="invalid_billing_cycle",
        )


def is_open(window_end: datetime | None, now: datetime) -> bool:
    return window_end is not None and now < window_end


def time_left(window_end: datetime | None, now: datetime) -> timedelta | None:
    """What is left of a window, or None once it has closed."""
    if not is_open(window_end, now):
        return None
    return window_end - now


def countdown_words(remaining: timedelta | None) -> str:
    if remaining is None:
        return "closed"
    hours = math.floor(remaining.total_seconds() / 3600)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} hour{'s' if hours != 1 else ''} left"
    if hours:
        return f"{hours} hour{'s' if hours != 1 else ''} left"
    minutes = max(1, math.floor(remaining.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''} left"


def refundable_quantity(batches: list[BatchLike], now: datetime) -> int:
    return sum(b.quantity - b.refunded for b in batches if is_open(b.refundable_until, now))


def monthly_equivalent(unit_price: Decimal, billing_cycle: str) -> Decimal:
    return (unit_price / CYCLE_MONTHS[billing_cycle]).quantize(CENT, rounding=ROUND_HALF_UP)


# -- money: charge cycles, billing days, lines ------------------------------------------------------
def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _add_months_to_day(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def charge_cycle(anchor: datetime, billing_cycle: str, on: datetime) -> tuple[date, date]:
    """The charge cycle that contains the UTC day of ``on``: its first day and the next cycle's first day.

    "Your subscription charge cycle days are based on the calendar days of the month when you buy for
    the first time, or pay recurring cycle charges, or renew." Cycles recur on the anchor's day of the
    month counted from the anchor, so a subscription bought on 31 January is charged again on
    28 February, then 31 March.
    """
    first, day, months = utc_day(anchor), utc_day(on), CYCLE_MONTHS[billing_cycle]
    index = max(0, ((day.year - first.year) * 12 + day.month - first.month) // months)
    while index > 0 and _add_months_to_day(first, index * months) > day:
        index -= 1
    while _add_months_to_day(first, (index + 1) * months) <= day:
        index += 1
    return _add_months_to_day(first, index * months), _add_months_to_day(first, (index + 1) * months)


def line_amount(*, unit_price: Decimal, quantity: int, billing_days: int, cycle_days: int) -> Decimal:
    """One billing line: unit price / charge cycle days x billing days x billable quantity, rounded down once."""
    if quantity <= 0 or billing_days <= 0:
        return Decimal("0.00")
    raw = unit_price * quantity * billing_days / Decimal(cycle_days)
    return raw.quantize(CENT, rounding=ROUND_DOWN)


def in_full_refund_window(added_at: datetime, now: datetime) -> bool:
    """Seats given back within 24 hours of being bought (or renewed) are refunded in full."""
    return now < added_at + FULL_REFUND_WINDOW


def refund_days(*, added_at: datetime, now: datetime, cycle: tuple[date, date]) -> int:
    """Billing days refunded for a seat given back ``now``: from today (or, inside 24 hours, from the
    day it was charged in this cycle) to the end of the cycle."""
    start, next_start = cycle
    first = max(utc_day(added_at), start) if in_full_refund_window(added_at, now) else utc_day(now)
    return max(0, (next_start - max(first, start)).days)


def refund_options(*, bought_at: datetime | None, now: datetime) -> list[tuple[str, datetime]]:
    """Partner Center's ``refundOptions`` for a purchase or renewal at ``bought_at``: what is still open."""
    if bought_at is None:
        return []
    options = [("Full", bought_at + FULL_REFUND_WINDOW), ("Partial", refund_window_end(bought_at))]
    return [(kind, expires) for kind, expires in options if now < expires]


def upgrade_window_end(*, source_window_end: datetime | None, upgraded_at: datetime) -> datetime | None:
    """Cancellation windows are not applied to upgrades: the upgraded seats (and a partial upgrade's new
    subscription) keep the source's window, which may already be closed; an upgrade never opens one."""
    del upgraded_at  # an upgrade's own time never starts a window
    return source_window_end


@dataclass(frozen=True)
class UpgradeCharges:
    """The ``convert`` lines of an upgrade: what the source is credited and what the target is charged."""

    credit: Decimal
    charge: Decimal
    billing_days: int
    cycle: tuple[date, date]

    @property
    def net(self) -> Decimal:
        return self.charge - self.credit


def upgrade_charges(*, source_unit: Decimal, target_unit: Decimal, billing_cycle: str, anchor: datetime,
                    now: datetime, source_seats: int, seats_moved: int, target_seats: int = 0,
                    target_anchor: datetime | None = None) -> UpgradeCharges:
    """An upgrade converts ``seats_moved`` seats for the billing days left in the cycle that contains today.

    The source is wiped and recreated without the moved seats at its own price (the credit is
    ``line(source_seats) - line(source_seats - seats_moved)``); the target is wiped and recreated with
    them at its price over its own cycle (``line(target_seats + seats_moved) - line(target_seats)``; a
    partial upgrade's new subscription starts from 0 and keeps the source's cycle). Upgrades have no
    cancellation window, so there is no 24-hour full refund: billing days always run from today.
    """
    cycle = charge_cycle(anchor, billing_cycle, now)
    days = (cycle[1] - utc_day(now)).days

    def line(unit: Decimal, quantity: int, cycle_of: tuple[date, date], billing_days: int) -> Decimal:
        return line_amount(unit_price=unit, quantity=quantity, billing_days=billing_days,
                           cycle_days=(cycle_of[1] - cycle_of[0]).days)

    credit = line(source_unit, source_seats, cycle, days) - line(source_unit, source_seats - seats_moved, cycle, days)
    target_cycle = charge_cycle(target_anchor or anchor, billing_cycle, now)
    target_days = (target_cycle[1] - utc_day(now)).days
    charge = (line(target_unit, target_seats + seats_moved, target_cycle, target_days)
              - line(target_unit, target_seats, target_cycle, target_days))
    return UpgradeCharges(credit=credit, charge=charge, billing_days=days, cycle=cycle)


def billing_period(added_at: datetime, billing_cycle: str, billing_anchor: datetime | None = None
                   ) -> tuple[datetime, datetime]:
    """The charge cycle containing ``added_at``, as UTC midnights (the anchor defaults to ``added_at``)."""
    start, next_start = charge_cycle(billing_anchor or added_at, billing_cycle, added_at)
    return utc_midnight(start), utc_midnight(next_start)


def prorated_refund(*, unit_price: Decimal, billing_cycle: str, added_at: datetime, now: datetime,
                    billing_anchor: datetime | None = None) -> Decimal:
    """Refund for one seat given back ``now``: its line for the billing days left, rounded down.

    The cycle is the one containing ``now`` (seats are charged again at each cycle charge), not the one
    the seat was added in. Inside 24 hours of ``added_at`` the refund is full.
    """
    cycle = charge_cycle(billing_anchor or added_at, billing_cycle, now)
    return line_amount(unit_price=unit_price, quantity=1, billing_days=refund_days(added_at=added_at, now=now,
                                                                                   cycle=cycle),
                       cycle_days=(cycle[1] - cycle[0]).days)


def removal_credit(*, unit_price: Decimal, billing_cycle: str, anchor: datetime, added_at: datetime,
                   now: datetime, seats_before: int, seats_removed: int) -> Decimal:
    """What Microsoft credits for ``seats_removed`` seats of a batch added at ``added_at``, removed ``now``.

    Microsoft wipes the current count's line and recreates the new count's line for the billing days
    left in the cycle that contains ``now`` (each line rounded down once), so the credit is the old
    line minus the new one. Seats inside their first 24 hours are wiped from the day they were charged.
    """
    cycle = charge_cycle(anchor, billing_cycle, now)
    days = refund_days(added_at=added_at, now=now, cycle=cycle)
    cycle_days = (cycle[1] - cycle[0]).days

    def line(quantity: int) -> Decimal:
        return line_amount(unit_price=unit_price, quantity=quantity, billing_days=days, cycle_days=cycle_days)

    return line(seats_before) - line(seats_before - seats_removed)


@dataclass(frozen=True)
class BatchRefund:
    added_at: datetime
    window_end: datetime
    seats: int
    refund: Decimal
    full: bool = False


@dataclass(frozen=True)
class ReductionPlan:
    """What a reduction (or a cancellation, to 0) would do, before anyone commits to it."""

    current_quantity: int
    new_quantity: int
    allowed: bool
    reason: str
    refundable_now: int
    seats_refunded: int
    seats_committed: int
    refund_total: Decimal
    commitment_end: datetime | None
    batches: list[BatchRefund] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return self.current_quantity - self.new_quantity

    @property
    def refund_type(self) -> str:
        """Partner Center's words: "Full" when every seat given back is inside its first 24 hours."""
        if not self.batches:
            return ""
        return "Full" if all(line.full for line in self.batches) else "Partial"


def plan_reduction(
    *,
    batches: list[BatchLike],
    current_quantity: int,
    new_quantity: int,
    unit_price: Decimal,
    billing_cycle: str,
    commitment_end: datetime | None,
    now: datetime,
    minimum_quantity: int = 1,
    billing_anchor: datetime | None = None,
) -> ReductionPlan:
    """Seats come off the newest open batches first, so the longest windows are used last."""
    refundable_now = refundable_quantity(batches, now)
    to_remove = current_quantity - new_quantity
    committed = current_quantity - refundable_now

    def refusal(reason: str) -> ReductionPlan:
        return ReductionPlan(current_quantity, new_quantity, False, reason, refundable_now, 0,
                             current_quantity, Decimal("0.00"), commitment_end)

    if to_remove <= 0:
        return refusal("The new quantity is not lower than the current one.")
    if 0 < new_quantity < minimum_quantity:
        return refusal(f"This offer needs at least {minimum_quantity} seats.")
    if to_remove > refundable_now:
        if refundable_now == 0:
            return refusal(
                "No seats can be removed now: every batch of seats is past its 7-day window. "
                "Schedule the reduction for the next term instead."
            )
        return refusal(
            f"Only {refundable_now} seat{'s' if refundable_now != 1 else ''} can be removed now "
            f"(added in the last 7 days). Schedule the rest for the next term."
        )
    anchor = billing_anchor or min((b.added_at for b in batches), default=now)
    remaining, seats_left = to_remove, current_quantity
    lines: list[BatchRefund] = []
    for batch in sorted(batches, key=lambda b: b.added_at, reverse=True):
        if remaining == 0:
            break
        if not is_open(batch.refundable_until, now):
            continue
        take = min(remaining, batch.quantity - batch.refunded)
        if take <= 0:
            continue
        credit = removal_credit(unit_price=unit_price, billing_cycle=billing_cycle, anchor=anchor,
                                added_at=batch.added_at, now=now, seats_before=seats_left, seats_removed=take)
        lines.append(BatchRefund(batch.added_at, batch.refundable_until, take, credit,
                                 full=in_full_refund_window(batch.added_at, now)))
        remaining -= take
        seats_left -= take
    return ReductionPlan(
        current_quantity=current_quantity,
        new_quantity=new_quantity,
        allowed=True,
        reason="",
        refundable_now=refundable_now,
        seats_refunded=to_remove,
        seats_committed=max(0, committed) if new_quantity else 0,
        refund_total=sum((line.refund for line in lines), Decimal("0.00")),
        commitment_end=commitment_end,
        batches=lines,
    )


def take_from_batches(batches: list[BatchLike], seats: int, now: datetime) -> dict[int, int]:
    """Which batches (by index) give back how many seats: the same order ``plan_reduction`` uses."""
    taken: dict[int, int] = {}
    order = sorted(range(len(batches)), key=lambda i: batches[i].added_at, reverse=True)
    for index in order:
        if seats == 0:
            break
        batch = batches[index]
        if not is_open(batch.refundable_until, now):
            continue
        take = min(seats, batch.quantity - batch.refunded)
        if take > 0:
            taken[index] = take
            seats -= take
    if seats:
        raise RuleViolation("Not enough seats are inside their 7-day window.", code="seat_window_closed")
    return taken


def check_cancellation(*, cancellation_allowed_until: datetime | None, now: datetime) -> None:
    if not is_open(cancellation_allowed_until, now):
        raise RuleViolation(
            "The 7-day cancellation window has closed. You can turn off auto-renew so the subscription "
            "ends with its term, or schedule a smaller quantity for the next term.",
            code="cancellation_window_closed",
        )


_ISO_WINDOW = re.compile(r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?)?$")


def window_in_words(duration: str) -> str:
    """An ISO 8601 window from cancellationPolicies ("P7D", "PT168H", "P1W") as words: "7 days", "36 hours".

    Microsoft states the same seven days as P7D or PT168H depending on the offer; anything we
    cannot read falls back to the New Commerce rule, seven days, rather than printing the raw code.
    """
    found = _ISO_WINDOW.match((duration or "").strip().upper())
    if not found or not any(found.groupdict().values()):
        return "7 days"
    parts = {k: int(v or 0) for k, v in found.groupdict().items()}
    minutes = ((parts["weeks"] * 7 + parts["days"]) * 24 + parts["hours"]) * 60 + parts["minutes"]
    # The largest unit that divides the window exactly; minutes always do.
    unit, size = next((u, n) for u, n in (("day", 24 * 60), ("hour", 60), ("minute", 1)) if minutes % n == 0)
    count = minutes // size
    return f"{count} {unit}{'s' if count != 1 else ''}"


def offer_in_words(*, term_duration: str, billing_cycle: str, unit_price: Decimal | None, currency: str,
                   cancellation_window: str = "P7D") -> str:
    """One paragraph a non-specialist can read before buying."""
    term = TERM_WORDS.get(term_duration, term_duration)
    cycle = CYCLE_WORDS.get(billing_cycle, billing_cycle)
    window = window_in_words(cancellation_window or "P7D")
    price = f"{currency} {unit_price:.2f} per seat, billed {cycle}" if unit_price is not None else "Price on request"
    return (
        f"You commit to {term}. {price}. You can cancel, or remove seats you just added, within {window} "
        f"of buying them for a prorated refund; after that, seats stay paid until the term ends and can "
        f"only be reduced at renewal. Adding seats is possible at any time."
    )
