"""The statutory clocks on worked dates: month ends, weekends, federal holidays, both sides of each boundary."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privacy import deadlines as d
from privacy.deadlines import Regime

D = datetime.date


def test_us_federal_holidays_2026_observed():
    assert d.us_federal_holidays(2026) == {
        D(2026, 1, 1), D(2026, 1, 19), D(2026, 2, 16), D(2026, 5, 25), D(2026, 6, 19),
        D(2026, 7, 3),  # 4 July is a Saturday
        D(2026, 9, 7), D(2026, 10, 12), D(2026, 11, 11), D(2026, 11, 26), D(2026, 12, 25),
    }
    # 1 January 2022 was a Saturday: observed on Friday 31 December 2021.
    assert D(2021, 12, 31) in d.us_federal_holidays(2021)
    assert D(2022, 1, 1) not in d.us_federal_holidays(2022)


def test_ccpa_acknowledgement_over_christmas_and_new_year():
    # Friday 18 Dec 2026: 25 Dec and 1 Jan are holidays, so the 10th business day is Tue 5 Jan 2027.
    assert d.ccpa_ack_due(D(2026, 12, 18)) == D(2027, 1, 5)
    assert d.ccpa_ack_due(D(2026, 12, 11)) == D(2026, 12, 28)
    # Received on a Saturday: counting starts on Monday.
    assert d.ccpa_ack_due(D(2026, 12, 19)) == D(2027, 1, 5)


def test_gdpr_one_month_at_month_ends_and_weekends():
    assert d.gdpr_response_due(D(2026, 1, 31)) == D(2026, 3, 2)  # 28 Feb is a Saturday
    assert d.gdpr_response_due(D(2024, 1, 31)) == D(2024, 2, 29)  # leap year, a Thursday
    assert d.gdpr_response_due(D(2026, 1, 15)) == D(2026, 2, 16)  # 15 Feb is a Sunday
    assert d.gdpr_response_due(D(2026, 3, 10)) == D(2026, 4, 10)  # a Friday: no roll
    assert d.gdpr_response_due(D(2026, 12, 31)) == D(2027, 2, 1)  # 31 Jan 2027 is a Sunday
    assert d.gdpr_extended_due(D(2026, 1, 31)) == D(2026, 4, 30)
    # A public holiday the officer's calendar names rolls the end too.
    assert d.gdpr_response_due(D(2026, 3, 10), holidays=[D(2026, 4, 10)]) == D(2026, 4, 13)


def test_ccpa_45_days_counting_the_day_of_receipt():
    assert d.ccpa_response_due(D(2026, 1, 31)) == D(2026, 3, 16)
    assert d.ccpa_extended_due(D(2026, 1, 31)) == D(2026, 4, 30)  # day 90
    assert (d.ccpa_extended_due(D(2026, 6, 1)) - D(2026, 6, 1)).days + 1 == 90


def test_ccpa_opt_out_15_business_days_over_thanksgiving():
    assert d.ccpa_opt_out_due(D(2026, 11, 20)) == D(2026, 12, 14)
    assert d.ccpa_opt_out_due(D(2026, 11, 13)) == D(2026, 12, 7)


def test_several_regimes_take_the_earliest_dates():
    both = d.effective([Regime.GDPR, Regime.CCPA], D(2026, 1, 31))
    assert both.response_due == D(2026, 3, 2)
    assert both.ack_due == d.ccpa_ack_due(D(2026, 1, 31))
    assert both.extended_due == D(2026, 4, 30)
    assert d.effective([Regime.GDPR], D(2026, 1, 31)).ack_due is None
    with pytest.raises(ValueError):
        d.effective([], D(2026, 1, 31))


@pytest.mark.parametrize(
    ("regime", "last_day"),
    [(Regime.GDPR, D(2026, 3, 2)), (Regime.CCPA, D(2026, 3, 16))],
)
def test_extension_allowed_until_the_end_of_the_first_period_and_once(regime, last_day):
    deadlines = d.effective([regime], D(2026, 1, 31))
    assert d.can_extend(deadlines, today=last_day, already_extended=False) is None
    assert "too late" in d.can_extend(deadlines, today=last_day + datetime.timedelta(days=1), already_extended=False)
    assert "already been extended" in d.can_extend(deadlines, today=D(2026, 2, 1), already_extended=True)


def test_opt_outs_cannot_be_extended():
    deadlines = d.effective([Regime.CCPA], D(2026, 11, 20), opt_out=True)
    assert deadlines.response_due == D(2026, 12, 14) and deadlines.ack_due is None
    assert "cannot be extended" in d.can_extend(deadlines, today=D(2026, 11, 20), already_extended=False)


def test_queue_flags_on_both_sides_of_each_boundary():
    due = D(2026, 3, 16)
    assert d.flag(due, D(2026, 3, 10)) == ""
    assert d.flag(due, D(2026, 3, 11)) == "at_risk"
    assert d.flag(due, D(2026, 3, 16)) == "at_risk"
    assert d.flag(due, D(2026, 3, 17)) == "overdue"


@given(st.dates(min_value=D(2022, 1, 1), max_value=D(2035, 12, 31)), st.integers(min_value=0, max_value=40))
def test_business_day_addition_counts_exactly_n_business_days(start, n):
    end = d.add_business_days(start, n)
    between = [start + datetime.timedelta(days=i) for i in range(1, (end - start).days + 1)]
    assert sum(d.is_us_business_day(day) for day in between) == n
    assert n == 0 or d.is_us_business_day(end)


@given(st.dates(min_value=D(2022, 1, 1), max_value=D(2035, 12, 31)))
def test_gdpr_due_is_a_working_day_at_most_three_days_after_the_month(received):
    due = d.gdpr_response_due(received)
    month_later = d.add_months(received, 1)
    assert due.weekday() < 5 and month_later <= due <= month_later + datetime.timedelta(days=2)
    assert d.add_months(received, 1) > received
