"""Statutory clocks for privacy requests, as pure functions of dates (no database, no clock).

- GDPR Art. 12(3): answer within one month of receipt, extendable by two further months when the
  subject is told, with reasons, within the first month. A month is counted the EU way (Reg.
  1182/71): the same date in the next month, or that month's last day when the date does not exist
  (31 January + 1 month = 28 February); a period ending on a weekend or public holiday ends on the
  next working day.
- CCPA regs §7021: confirm receipt within 10 business days; respond within 45 calendar days counted
  from the day of receipt (that day is day 1), extendable once by 45 more (90 in all) with notice
  inside the first 45 days. §7026(f): act on an opt-out of sale/sharing within 15 business days.

Business days skip weekends and US federal holidays (observed dates), computed by rule below.
Where a request falls under several regimes, the earliest date wins (:func:`effective`).
"""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from django.db import models


class Regime(models.TextChoices):
    GDPR = "gdpr", "GDPR (EU, EEA, UK)"
    CCPA = "ccpa", "CCPA (California)"


GDPR_EXTENSION_MONTHS = 2
CCPA_ACK_BUSINESS_DAYS = 10
CCPA_RESPONSE_DAYS = 45
CCPA_EXTENSION_DAYS = 45
CCPA_OPT_OUT_BUSINESS_DAYS = 15
AT_RISK_DAYS = 5  # a request due within this many days is flagged "at risk" on the officer's queue


# --- calendars ---------------------------------------------------------------------------------


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> datetime.date:
    """The n-th ``weekday`` (Mon=0) of the month; n=-1 for the last."""
    if n > 0:
        first = datetime.date(year, month, 1)
        return first + datetime.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = datetime.date(year, month, calendar.monthrange(year, month)[1])
    return last - datetime.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: datetime.date) -> datetime.date:
    if day.weekday() == 5:
        return day - datetime.timedelta(days=1)
    if day.weekday() == 6:
        return day + datetime.timedelta(days=1)
    return day


@cache
def us_federal_holidays(year: int) -> frozenset[datetime.date]:
    """US federal holidays as observed (5 U.S.C. 6103), including a 1 January observed the year before."""
    fixed = [(1, 1), (6, 19), (7, 4), (11, 11), (12, 25)]
    days = {_observed(datetime.date(year, m, d)) for m, d in fixed}
    days.add(_observed(datetime.date(year + 1, 1, 1)))  # 1 Jan on a Saturday is observed on 31 Dec
    days |= {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving Day
    }
    return frozenset(d for d in days if d.year == year)


def is_us_business_day(day: datetime.date) -> bool:
    return day.weekday() < 5 and day not in us_federal_holidays(day.year)


def is_eu_working_day(day: datetime.date, holidays: Iterable[datetime.date] = ()) -> bool:
    return day.weekday() < 5 and day not in set(holidays)


def add_business_days(start: datetime.date, count: int) -> datetime.date:
    """The ``count``-th US business day after ``start`` (``start`` itself is not counted)."""
    if count < 0:
        raise ValueError("count must not be negative")
    day = start
    while count:
        day += datetime.timedelta(days=1)
        if is_us_business_day(day):
            count -= 1
    return day


def add_months(start: datetime.date, months: int) -> datetime.date:
    """Same date ``months`` later, or the last day of that month when the date does not exist."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return datetime.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def next_working_day(day: datetime.date, holidays: Iterable[datetime.date] = ()) -> datetime.date:
    """``day`` itself if it is a working day, else the next one (GDPR periods ending on a day off)."""
    holidays = set(holidays)
    while not is_eu_working_day(day, holidays):
        day += datetime.timedelta(days=1)
    return day


# --- the clocks --------------------------------------------------------------------------------


def gdpr_response_due(received: datetime.date, holidays: Iterable[datetime.date] = ()) -> datetime.date:
    return next_working_day(add_months(received, 1), holidays)


def gdpr_extended_due(received: datetime.date, holidays: Iterable[datetime.date] = ()) -> datetime.date:
    return next_working_day(add_months(received, 1 + GDPR_EXTENSION_MONTHS), holidays)


def ccpa_ack_due(received: datetime.date) -> datetime.date:
    return add_business_days(received, CCPA_ACK_BUSINESS_DAYS)


def ccpa_response_due(received: datetime.date) -> datetime.date:
    return received + datetime.timedelta(days=CCPA_RESPONSE_DAYS - 1)


def ccpa_extended_due(received: datetime.date) -> datetime.date:
    return received + datetime.timedelta(days=CCPA_RESPONSE_DAYS + CCPA_EXTENSION_DAYS - 1)


def ccpa_opt_out_due(received: datetime.date) -> datetime.date:
    return add_business_days(received, CCPA_OPT_OUT_BUSINESS_DAYS)


@dataclass(frozen=True)
class Clock:
    """The dates one regime sets for one request."""

    regime: str
    ack_due: datetime.date | None
    response_due: datetime.date
    extended_due: datetime.date
    # The last day an extension may still be given (notice within the first month / first 45 days).
    extend_by: datetime.date


def clock(regime: str, received: datetime.date, *, opt_out: bool = False) -> Clock:
    if regime == Regime.GDPR:
        due = gdpr_response_due(received)
        return Clock(regime, None, due, gdpr_extended_due(received), due)
    if regime == Regime.CCPA:
        if opt_out:
            due = ccpa_opt_out_due(received)
            return Clock(regime, None, due, due, received - datetime.timedelta(days=1))  # no extension
        due = ccpa_response_due(received)
        return Clock(regime, ccpa_ack_due(received), due, ccpa_extended_due(received), due)
    raise ValueError(f"Unknown regime {regime!r}")


@dataclass(frozen=True)
class Deadlines:
    ack_due: datetime.date | None
    response_due: datetime.date
    extended_due: datetime.date
    extend_by: datetime.date
    extendable: bool


def effective(regimes: Iterable[str], received: datetime.date, *, opt_out: bool = False) -> Deadlines:
    """The earliest of every applicable regime's dates: meeting it meets them all."""
    clocks = [clock(r, received, opt_out=opt_out) for r in sorted(set(regimes))]
    if not clocks:
        raise ValueError("A request needs at least one regime.")
    acks = [c.ack_due for c in clocks if c.ack_due is not None]
    extend_by = min(c.extend_by for c in clocks)
    return Deadlines(
        ack_due=min(acks) if acks else None,
        response_due=min(c.response_due for c in clocks),
        extended_due=min(c.extended_due for c in clocks),
        extend_by=extend_by,
        extendable=extend_by >= received,
    )


def can_extend(deadlines: Deadlines, *, today: datetime.date, already_extended: bool) -> str | None:
    """Why an extension is refused now (a sentence), or None when it is allowed."""
    if already_extended:
        return "This request has already been extended once."
    if not deadlines.extendable:
        return "Opt-out requests cannot be extended."
    if today > deadlines.extend_by:
        return (
            f"The extension notice had to be sent by {deadlines.extend_by:%d %B %Y} "
            "(within the first period); it is too late to extend."
        )
    return None


def flag(due: datetime.date, today: datetime.date) -> str:
    """"overdue", "at_risk" (due within AT_RISK_DAYS days) or "" for the officer's queue."""
    if today > due:
        return "overdue"
    if (due - today).days <= AT_RISK_DAYS:
        return "at_risk"
    return ""
