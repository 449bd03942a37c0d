"""New Commerce rules as pure functions, with time frozen at the edges of each window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from licensing import nce

T0 = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)


@dataclass
class Batch:
    quantity: int
    added_at: datetime
    refunded: int = 0

    @property
    def refundable_until(self):
        return nce.refund_window_end(self.added_at)


def test_term_end_and_renewal_follow_partner_center_dates():
    assert nce.term_end(T0, "P1Y") == datetime(2026, 1, 9, 23, 59, 59, tzinfo=UTC)
    assert nce.term_end(datetime(2025, 1, 31, tzinfo=UTC), "P1M") == datetime(2025, 2, 27, 23, 59, 59, tzinfo=UTC)
    assert nce.renewal_date(nce.term_end(T0, "P1Y")) == datetime(2026, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(("term", "cycle", "ok"), [
    ("P1M", "monthly", True), ("P1M", "annual", False), ("P1Y", "annual", True),
    ("P1Y", "triennial", False), ("P3Y", "triennial", True), ("P2Y", "monthly", False),
])
def test_billing_frequency_must_fit_the_term(term, cycle, ok):
    if ok:
        nce.validate_term(term, cycle)
    else:
        with pytest.raises(nce.RuleViolation):
            nce.validate_term(term, cycle)


def test_cancellation_window_is_168_hours_to_the_second():
    until = nce.refund_window_end(T0)
    with time_machine.travel(until - timedelta(seconds=1), tick=False):
        nce.check_cancellation(cancellation_allowed_until=until, now=datetime.now(UTC))
        assert nce.countdown_words(nce.time_left(until, datetime.now(UTC))) == "1 minute left"
    with time_machine.travel(until, tick=False), pytest.raises(nce.RuleViolation) as closed:
        nce.check_cancellation(cancellation_allowed_until=until, now=datetime.now(UTC))
    assert closed.value.code == "cancellation_window_closed"
    assert "auto-renew" in str(closed.value)


def test_countdown_words():
    assert nce.countdown_words(timedelta(days=6, hours=23, minutes=59)) == "6 days 23 hours left"
    assert nce.countdown_words(timedelta(days=1)) == "1 day 0 hours left"
    assert nce.countdown_words(timedelta(hours=5, minutes=10)) == "5 hours left"
    assert nce.countdown_words(None) == "closed"


def test_each_batch_has_its_own_window_and_newest_seats_go_first():
    batches = [Batch(10, T0), Batch(3, T0 + timedelta(days=5))]
    with time_machine.travel(T0 + timedelta(days=6), tick=False):
        now = datetime.now(UTC)
        assert nce.refundable_quantity(batches, now) == 13
        plan = nce.plan_reduction(batches=batches, current_quantity=13, new_quantity=9, unit_price=Decimal("30"),
                                  billing_cycle="monthly", commitment_end=None, now=now)
        assert plan.allowed and plan.seats_refunded == 4
        assert [(line.seats, line.added_at) for line in plan.batches] == [(3, batches[1].added_at), (1, T0)]
    with time_machine.travel(T0 + timedelta(days=8), tick=False):
        now = datetime.now(UTC)
        assert nce.refundable_quantity(batches, now) == 3
        refused = nce.plan_reduction(batches=batches, current_quantity=13, new_quantity=9, unit_price=Decimal("30"),
                                     billing_cycle="monthly", commitment_end=None, now=now)
        assert not refused.allowed and "Only 3 seats" in refused.reason
        assert nce.take_from_batches(batches, 3, now) == {1: 3}
    with time_machine.travel(T0 + timedelta(days=13), tick=False):
        refused = nce.plan_reduction(batches=batches, current_quantity=13, new_quantity=12, unit_price=Decimal("30"),
                                     billing_cycle="monthly", commitment_end=None, now=datetime.now(UTC))
        assert not refused.allowed and "next term" in refused.reason


def test_refund_is_prorated_by_utc_day_and_rounded_down():
    # Bought 10 January 09:00; given back on 11 January (25 hours later): 10 January was used,
    # 30 of January's 31 charge-cycle days are refunded: 30.00 / 31 x 30 = 29.032... -> 29.03.
    refund = nce.prorated_refund(unit_price=Decimal("30.00"), billing_cycle="monthly", added_at=T0,
                                 now=T0 + timedelta(days=1, hours=1))
    assert refund == Decimal("29.03")
    # Within 24 hours the refund is full, even after UTC midnight.
    assert nce.prorated_refund(unit_price=Decimal("30.00"), billing_cycle="monthly", added_at=T0,
                               now=T0 + timedelta(minutes=5)) == Decimal("30.00")
    assert nce.prorated_refund(unit_price=Decimal("30.00"), billing_cycle="monthly", added_at=T0,
                               now=T0 + timedelta(hours=23, minutes=59)) == Decimal("30.00")


def test_cancellation_plan_refunds_everything_and_commits_nothing():
    batches = [Batch(5, T0)]
    plan = nce.plan_reduction(batches=batches, current_quantity=5, new_quantity=0, unit_price=Decimal("12.00"),
                              billing_cycle="monthly", commitment_end=None, now=T0 + timedelta(days=2))
    assert plan.allowed and plan.seats_refunded == 5 and plan.seats_committed == 0
    # One line for the five seats, rounded once: 12.00 / 31 x 29 x 5 = 56.129 -> 56.12 (not 5 x 11.22).
    assert plan.refund_total == Decimal("56.12")


def test_minimum_quantity_is_enforced():
    plan = nce.plan_reduction(batches=[Batch(10, T0)], current_quantity=10, new_quantity=2, unit_price=Decimal(1),
                              billing_cycle="monthly", commitment_end=None, now=T0, minimum_quantity=5)
    assert not plan.allowed and "at least 5" in plan.reason


def test_offer_in_words_names_term_billing_window_and_price():
    words = nce.offer_in_words(term_duration="P1Y", billing_cycle="monthly", unit_price=Decimal("25.30"),
                               currency="USD", cancellation_window="P7D")
    assert "one year" in words and "every month" in words and "7 days" in words and "USD 25.30" in words


def test_seats_added_mid_term_refund_only_what_they_were_charged():
    # Annual billing: a seat added half-way through the year was charged for the remaining days only,
    # so giving it back cannot refund (nearly) a whole year.
    start = datetime(2025, 1, 10, 16, 57, tzinfo=UTC)
    added = datetime(2025, 7, 11, 9, 0, tzinfo=UTC)
    # Inside 24 hours: everything charged for it, 2025-07-11 to 2026-01-09, 183 of 365 days.
    refund = nce.prorated_refund(unit_price=Decimal("365.00"), billing_cycle="annual", added_at=added,
                                 now=added + timedelta(hours=20), billing_anchor=start)
    assert refund == Decimal("183.00")
    # Two days later: from 2025-07-13, 181 of 365 days.
    assert nce.prorated_refund(unit_price=Decimal("365.00"), billing_cycle="annual", added_at=added,
                               now=added + timedelta(days=2), billing_anchor=start) == Decimal("181.00")
    # Monthly billing: the period is the subscription's month that contains the addition.
    assert nce.billing_period(added, "monthly", start) == (datetime(2025, 7, 10, tzinfo=UTC),
                                                          datetime(2025, 8, 10, tzinfo=UTC))


def test_a_renewal_batch_starts_a_new_billing_period_whatever_the_time_of_purchase():
    start = datetime(2025, 1, 10, 16, 57, tzinfo=UTC)
    renewal = nce.renewal_date(nce.term_end(start, "P1Y"))
    refund = nce.prorated_refund(unit_price=Decimal("31.00"), billing_cycle="monthly", added_at=renewal,
                                 now=renewal + timedelta(days=1, hours=3), billing_anchor=start)
    assert refund == Decimal("30.00")  # 31-day January 2026 cycle, 10 January used
    plan = nce.plan_reduction(batches=[Batch(2, renewal)], current_quantity=2, new_quantity=1,
                              unit_price=Decimal("31.00"), billing_cycle="monthly", commitment_end=None,
                              now=renewal + timedelta(days=1, hours=3), billing_anchor=start)
    assert plan.refund_total == Decimal("30.00") and plan.refund_type == "Partial"
    full = nce.plan_reduction(batches=[Batch(2, renewal)], current_quantity=2, new_quantity=1,
                              unit_price=Decimal("31.00"), billing_cycle="monthly", commitment_end=None,
                              now=renewal + timedelta(hours=3), billing_anchor=start)
    assert full.refund_total == Decimal("31.00") and full.refund_type == "Full"


@pytest.mark.parametrize("window, words", [
    ("P7D", "7 days"), ("PT168H", "7 days"), ("P1W", "7 days"), ("PT72H", "3 days"), ("P1DT12H", "36 hours"),
    ("PT1H", "1 hour"), ("", "7 days"), ("garbage", "7 days"),
])
def test_cancellation_window_in_words_reads_days_hours_and_weeks(window, words):
    assert nce.window_in_words(window) == words
    offer = nce.offer_in_words(term_duration="P1M", billing_cycle="monthly", unit_price=Decimal("6.00"),
                               currency="EUR", cancellation_window=window)
    assert f"within {words} of buying" in offer
