"""The edges of the New Commerce rules that the worked examples do not reach (docs/mutation-testing.md).

Each test states a rule a customer or a page depends on: the customer's dates are UTC calendar days
whatever zone the server runs in, a charge cycle is the one a plain walk from the anchor finds, a
refusal says exactly what to do instead, and seats come back from the newest batch that can still give
them, skipping those that cannot.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licensing import nce

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
END = datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC)
KIRITIMATI = timezone(timedelta(hours=14))  # the earliest zone: its midnight is 10:00 UTC the day before


@dataclass
class Batch:
    quantity: int
    added_at: datetime
    refunded: int = 0
    window_end: datetime | None = None

    @property
    def refundable_until(self):
        return self.window_end or nce.refund_window_end(self.added_at)


@pytest.fixture
def server_in_tokyo():
    """The process's local zone set to UTC+9, as on a server whose TIME_ZONE was set to the office's."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


# -- dates are UTC calendar days, whatever the server's zone -------------------------------------------
def test_term_end_and_renewal_are_utc_days_whatever_the_server_zone(server_in_tokyo):
    # 20:00 UTC on 10 January is already 11 January in Tokyo; the term is counted from 10 January.
    bought = datetime(2025, 1, 10, 20, 0, tzinfo=UTC)
    assert nce.term_end(bought, "P1Y") == datetime(2026, 1, 9, 23, 59, 59, tzinfo=UTC)
    assert nce.renewal_date(datetime(2026, 1, 9, 23, 59, 59, tzinfo=UTC)) == datetime(2026, 1, 10, tzinfo=UTC)
    assert nce.utc_day(bought) == date(2025, 1, 10)
    assert nce.term_dates(END) == nce.TermDates(date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 2))


def test_customer_dates_of_a_term_ending_on_the_last_day_of_february():
    end = nce.end_of_last_day(date(2028, 2, 29))
    assert end == datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC)
    assert end.utcoffset() == timedelta(0)
    dates = nce.term_dates(end)
    assert dates == nce.TermDates(term_ends_on=date(2028, 2, 29), renews_on=date(2028, 3, 1),
                                  last_day_to_reduce=date(2028, 2, 29))
    assert (nce.term_ends_on(end), nce.renews_on(end), nce.last_day_to_reduce(end)) == (
        dates.term_ends_on, dates.renews_on, dates.last_day_to_reduce)


def test_customer_dates_given_in_another_zone_are_read_in_utc():
    # 09:00 on 3 March in Kiritimati is 19:00 UTC on 2 March: the term ends on 2 March.
    end = datetime(2026, 3, 3, 9, 0, tzinfo=KIRITIMATI)
    assert nce.term_dates(end) == nce.TermDates(date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 2))
    assert nce.term_end(datetime(2025, 3, 3, 9, 0, tzinfo=KIRITIMATI), "P1M") == datetime(
        2025, 4, 1, 23, 59, 59, tzinfo=UTC)


def test_no_commitment_end_has_no_customer_dates():
    assert nce.term_dates(None) is None


def test_monthly_equivalent_rounds_half_cents_up():
    assert nce.monthly_equivalent(Decimal("1.50"), "annual") == Decimal("0.13")  # 0.125
    assert nce.monthly_equivalent(Decimal("120.00"), "annual") == Decimal("10.00")
    assert nce.monthly_equivalent(Decimal("360.18"), "triennial") == Decimal("10.01")  # 10.005
    assert nce.monthly_equivalent(Decimal("7.45"), "monthly") == Decimal("7.45")


# -- terms and billing frequencies ---------------------------------------------------------------------
def test_an_unknown_term_is_named_in_the_refusal():
    with pytest.raises(nce.RuleViolation) as refused:
        nce.validate_term("P2Y", "monthly")
    assert refused.value.code == "invalid_term"
    assert str(refused.value) == "Unknown term 'P2Y'."


def test_a_billing_frequency_the_term_does_not_allow_names_the_ones_it_does():
    with pytest.raises(nce.RuleViolation) as refused:
        nce.validate_term("P1Y", "triennial")
    assert refused.value.code == "invalid_billing_cycle"
    assert str(refused.value) == "A one year term can be billed monthly, annual, not triennial."


# -- countdowns and windows in words -------------------------------------------------------------------
@pytest.mark.parametrize(("remaining", "words"), [
    (timedelta(days=1, hours=1), "1 day 1 hour left"),
    (timedelta(days=2, hours=2, minutes=30), "2 days 2 hours left"),
    (timedelta(hours=1, minutes=59), "1 hour left"),
    (timedelta(hours=2), "2 hours left"),
    (timedelta(minutes=59, seconds=59), "59 minutes left"),
    (timedelta(minutes=2), "2 minutes left"),
    (timedelta(seconds=61), "1 minute left"),
    (timedelta(seconds=1), "1 minute left"),
])
def test_countdown_words_at_each_unit_edge(remaining, words):
    assert nce.countdown_words(remaining) == words


@pytest.mark.parametrize(("window", "words"), [
    ("PT1H30M", "90 minutes"), ("PT90M", "90 minutes"), ("PT1M", "1 minute"), ("P2D", "2 days"),
    ("PT1H", "1 hour"), (None, "7 days"), (" p7d ", "7 days"),
])
def test_window_in_words_for_windows_that_are_not_whole_days(window, words):
    assert nce.window_in_words(window) == words


def test_offer_in_words_reads_whole_for_a_known_offer():
    words = nce.offer_in_words(term_duration="P3Y", billing_cycle="annual", unit_price=Decimal("240"),
                               currency="GBP")
    assert words == (
        "You commit to three years. GBP 240.00 per seat, billed once a year, up front. You can cancel, or "
        "remove seats you just added, within 7 days of buying them for a prorated refund; after that, seats "
        "stay paid until the term ends and can only be reduced at renewal. Adding seats is possible at any time."
    )


def test_offer_in_words_shows_an_unknown_term_and_frequency_as_microsoft_states_them():
    words = nce.offer_in_words(term_duration="P5Y", billing_cycle="quarterly", unit_price=Decimal("3"),
                               currency="USD", cancellation_window="PT72H")
    assert words.startswith("You commit to P5Y. USD 3.00 per seat, billed quarterly. ")
    assert "within 3 days of buying" in words


def test_offer_without_a_price_says_price_on_request():
    words = nce.offer_in_words(term_duration="P1M", billing_cycle="monthly", unit_price=None, currency="EUR")
    assert words.startswith("You commit to one month. Price on request. You can cancel")


def test_the_cancellation_refusal_says_what_to_do_instead():
    with pytest.raises(nce.RuleViolation) as closed:
        nce.check_cancellation(cancellation_allowed_until=T0, now=T0)
    assert str(closed.value) == (
        "The 7-day cancellation window has closed. You can turn off auto-renew so the subscription ends with "
        "its term, or schedule a smaller quantity for the next term."
    )
    with pytest.raises(nce.RuleViolation):
        nce.check_cancellation(cancellation_allowed_until=None, now=T0)


# -- charge cycles against a plain walk from the anchor ------------------------------------------------
def walked_cycle(anchor: datetime, billing_cycle: str, on: datetime) -> tuple[date, date]:
    """Microsoft's rule restated plainly: step one cycle at a time from the anchor's day until the next
    cycle would start after the day of ``on``."""
    first, day, months = anchor.astimezone(UTC).date(), on.astimezone(UTC).date(), nce.CYCLE_MONTHS[billing_cycle]

    def start(index: int) -> date:
        month_index = first.month - 1 + index * months
        year, month = first.year + month_index // 12, month_index % 12 + 1
        last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
        return date(year, month, min(first.day, last))

    index = 0
    while start(index + 1) <= day:
        index += 1
    return start(index), start(index + 1)


utc_moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2032, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC))


@settings(max_examples=400, deadline=None)
@given(anchor=utc_moments, later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4 * 366)),
       billing_cycle=st.sampled_from(["monthly", "annual", "triennial"]))
def test_charge_cycle_is_the_one_a_walk_from_the_anchor_finds(anchor, later, billing_cycle):
    assert nce.charge_cycle(anchor, billing_cycle, anchor + later) == walked_cycle(anchor, billing_cycle,
                                                                                    anchor + later)


@pytest.mark.parametrize(("on", "cycle"), [
    # Bought 31 January: cycles start on 31 January, 29 February (a leap year), 31 March, 30 April.
    (datetime(2024, 2, 28, 23, 59, tzinfo=UTC), (date(2024, 1, 31), date(2024, 2, 29))),
    (datetime(2024, 2, 29, tzinfo=UTC), (date(2024, 2, 29), date(2024, 3, 31))),
    (datetime(2024, 3, 30, tzinfo=UTC), (date(2024, 2, 29), date(2024, 3, 31))),
    (datetime(2024, 3, 31, tzinfo=UTC), (date(2024, 3, 31), date(2024, 4, 30))),
    (datetime(2024, 4, 30, 10, tzinfo=UTC), (date(2024, 4, 30), date(2024, 5, 31))),
    (datetime(2025, 1, 30, tzinfo=UTC), (date(2024, 12, 31), date(2025, 1, 31))),
])
def test_charge_cycles_of_a_subscription_bought_on_the_31st(on, cycle):
    assert nce.charge_cycle(datetime(2024, 1, 31, 15, 0, tzinfo=UTC), "monthly", on) == cycle


def test_seats_recorded_a_moment_before_the_subscription_starts_are_billed_in_its_first_cycle():
    # The purchase's seats were recorded seconds before Microsoft's start date, across UTC midnight: they
    # are charged for the subscription's first cycle, never for a cycle before it existed.
    anchor = datetime(2025, 3, 3, 0, 0, 5, tzinfo=UTC)
    recorded = anchor - timedelta(seconds=10)
    assert nce.charge_cycle(anchor, "monthly", recorded) == (date(2025, 3, 3), date(2025, 4, 3))
    assert nce.billing_period(recorded, "annual", anchor) == (
        datetime(2025, 3, 3, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))


# -- lines and refund days -----------------------------------------------------------------------------
def test_a_line_for_one_day_is_charged_and_one_for_nothing_is_zero():
    assert nce.line_amount(unit_price=Decimal("31.00"), quantity=1, billing_days=1, cycle_days=31) == Decimal("1.00")
    assert nce.line_amount(unit_price=Decimal("31.00"), quantity=-1, billing_days=10, cycle_days=31) == Decimal("0")
    assert nce.line_amount(unit_price=Decimal("31.00"), quantity=2, billing_days=-3, cycle_days=31) == Decimal("0")
    assert nce.line_amount(unit_price=Decimal("31.00"), quantity=0, billing_days=10, cycle_days=31) == Decimal("0")


def test_refund_days_are_never_negative_once_the_cycle_is_over():
    cycle = (date(2025, 3, 3), date(2025, 4, 3))
    assert nce.refund_days(added_at=T0, now=datetime(2025, 4, 5, tzinfo=UTC), cycle=cycle) == 0
    assert nce.refund_days(added_at=T0, now=datetime(2025, 4, 2, 12, tzinfo=UTC), cycle=cycle) == 1


def test_an_upgrade_into_a_new_subscription_charges_the_moved_seats_from_zero():
    # 10.00 over a 31-day cycle for 10 days: one seat's line is 3.22; two seats' is 6.45. A new
    # subscription starts from no seats, so it is charged 3.22, not 6.45 - 3.22.
    charges = nce.upgrade_charges(source_unit=Decimal("10.00"), target_unit=Decimal("10.00"), billing_cycle="monthly",
                                  anchor=datetime(2025, 1, 1, tzinfo=UTC), now=datetime(2025, 1, 22, tzinfo=UTC),
                                  source_seats=1, seats_moved=1)
    assert charges.charge == Decimal("3.22")
    assert charges.cycle == (date(2025, 1, 1), date(2025, 2, 1))
    assert charges.billing_days == 10


# -- reductions: refusals, plans and which batches give seats back -------------------------------------
def plan(batches, current, new, *, now=T0 + timedelta(days=2), minimum=1, commitment_end=END):
    return nce.plan_reduction(batches=batches, current_quantity=current, new_quantity=new, unit_price=Decimal("31.00"),
                              billing_cycle="monthly", commitment_end=commitment_end, now=now,
                              minimum_quantity=minimum, billing_anchor=T0)


def refused(current, new, refundable, reason):
    return nce.ReductionPlan(current_quantity=current, new_quantity=new, allowed=False, reason=reason,
                             refundable_now=refundable, seats_refunded=0, seats_committed=current,
                             refund_total=Decimal("0.00"), commitment_end=END)


def test_the_same_quantity_is_not_a_reduction():
    assert plan([Batch(5, T0)], 5, 5) == refused(5, 5, 5, "The new quantity is not lower than the current one.")
    assert plan([Batch(5, T0)], 5, 6) == refused(5, 6, 5, "The new quantity is not lower than the current one.")


def test_the_minimum_holds_down_to_one_seat():
    assert plan([Batch(10, T0)], 10, 1, minimum=5) == refused(10, 1, 10, "This offer needs at least 5 seats.")


@pytest.mark.parametrize(("refundable", "reason"), [
    (0, "No seats can be removed now: every batch of seats is past its 7-day window. "
        "Schedule the reduction for the next term instead."),
    (1, "Only 1 seat can be removed now (added in the last 7 days). Schedule the rest for the next term."),
    (2, "Only 2 seats can be removed now (added in the last 7 days). Schedule the rest for the next term."),
])
def test_a_reduction_beyond_the_open_windows_says_how_many_seats_can_go(refundable, reason):
    batches = [Batch(10, T0 - timedelta(days=30))] + ([Batch(refundable, T0)] if refundable else [])
    current = 10 + refundable
    assert plan(batches, current, current - 3) == refused(current, current - 3, refundable, reason)


def test_an_allowed_plan_counts_the_seats_that_stay_committed():
    # 10 seats bought a month ago (committed), 3 added on T0 and 2 of those already given back.
    batches = [Batch(10, T0 - timedelta(days=31)), Batch(3, T0, refunded=2)]
    now = T0 + timedelta(days=2)
    result = plan(batches, 11, 10, now=now)
    assert result == nce.ReductionPlan(
        current_quantity=11, new_quantity=10, allowed=True, reason="", refundable_now=1, seats_refunded=1,
        seats_committed=10, refund_total=Decimal("29.00"), commitment_end=END,
        batches=[nce.BatchRefund(T0, T0 + timedelta(days=7), 1, Decimal("29.00"), full=False)],
    )


def test_a_plan_with_every_seat_refundable_commits_none():
    result = plan([Batch(5, T0)], 5, 3)
    assert result.allowed and result.seats_committed == 0 and result.seats_refunded == 2


def test_seats_come_back_past_an_upgraded_batch_whose_window_has_closed():
    # The newest seats came from an upgrade and kept the source's window, already closed; the purchase
    # before them is still open, so its seats are the ones given back.
    upgraded = Batch(4, T0 + timedelta(days=1), window_end=T0 - timedelta(days=1))
    bought = Batch(3, T0)
    now = T0 + timedelta(days=2)
    result = plan([bought, upgraded], 7, 5, now=now)
    assert result.allowed and [(line.added_at, line.seats) for line in result.batches] == [(T0, 2)]
    assert nce.take_from_batches([bought, upgraded], 2, now) == {0: 2}


def test_seats_come_back_past_a_batch_already_given_back():
    given_back = Batch(2, T0 + timedelta(days=1), refunded=2)
    bought = Batch(3, T0)
    now = T0 + timedelta(days=2)
    result = plan([bought, given_back], 3, 1, now=now)
    assert [(line.added_at, line.seats) for line in result.batches] == [(T0, 2)]
    assert nce.take_from_batches([bought, given_back], 2, now) == {0: 2}


def test_take_from_batches_takes_the_newest_first_and_counts_what_was_given_back():
    batches = [Batch(3, T0 + timedelta(days=1), refunded=1), Batch(5, T0), Batch(1, T0 + timedelta(days=2))]
    now = T0 + timedelta(days=3)
    assert nce.take_from_batches(batches, 1, now) == {2: 1}
    assert nce.take_from_batches(batches, 2, now) == {2: 1, 0: 1}
    assert nce.take_from_batches(batches, 4, now) == {2: 1, 0: 2, 1: 1}
    assert nce.refundable_quantity(batches, now) == 8


def test_take_from_batches_refuses_more_than_the_open_windows_hold():
    with pytest.raises(nce.RuleViolation) as refused_:
        nce.take_from_batches([Batch(3, T0, refunded=1)], 3, T0 + timedelta(days=1))
    assert refused_.value.code == "seat_window_closed"
    assert str(refused_.value) == "Not enough seats are inside their 7-day window."
