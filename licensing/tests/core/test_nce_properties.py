"""Properties of NCE refunds that must hold for any subscription, not only Microsoft's examples.

- a reduction's refund plus what stays charged for the rest of the cycle equals what was charged;
- a refund never exceeds what was charged for the seats given back;
- a cancellation inside 24 hours refunds everything;
- the portal's simulator and the emulator compute the same refund (decision 010);
- an upgrade credits the source no more than was charged for the moved seats, and both sides agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_UP, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licensing import nce
from msemulator.partner_center import nce as emu
from msemulator.state import iso

CENT = Decimal("0.01")


@dataclass
class Batch:
    quantity: int
    added_at: datetime
    refunded: int = 0

    @property
    def refundable_until(self):
        return nce.refund_window_end(self.added_at)


moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC))
prices = st.integers(min_value=1, max_value=100_000).map(lambda cents: Decimal(cents) / 100)
cycles = st.sampled_from(["monthly", "annual"])


@st.composite
def reductions(draw, *, min_age=timedelta(0), max_age=timedelta(days=7) - timedelta(seconds=1)):
    """A purchase, up to three additions, and a reduction while the newest batch is still refundable."""
    anchor = draw(moments)
    batches = [Batch(draw(st.integers(1, 50)), anchor)]
    at = anchor
    for _ in range(draw(st.integers(0, 3))):
        at = at + timedelta(seconds=draw(st.integers(0, 20 * 86400)))
        batches.append(Batch(draw(st.integers(1, 20)), at))
    now = at + timedelta(seconds=draw(st.integers(int(min_age.total_seconds()), int(max_age.total_seconds()))))
    current = sum(b.quantity for b in batches)
    refundable = nce.refundable_quantity(batches, now)
    new_quantity = draw(st.integers(current - refundable, current - 1)) if refundable else current - 1
    return anchor, batches, current, new_quantity, now, draw(prices), draw(cycles)


def plan(anchor, batches, current, new_quantity, now, unit, cycle):
    return nce.plan_reduction(batches=batches, current_quantity=current, new_quantity=new_quantity, unit_price=unit,
                              billing_cycle=cycle, commitment_end=None, now=now, minimum_quantity=0,
                              billing_anchor=anchor)


COMMON = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@COMMON
@given(reductions(min_age=timedelta(hours=24)))
def test_refund_plus_what_stays_charged_equals_what_was_charged(case):
    anchor, _batches, current, new_quantity, now, unit, cycle = case
    result = plan(*case)
    assert result.allowed
    start, nxt = nce.charge_cycle(anchor, cycle, now)
    days, cycle_days = (nxt - nce.utc_day(now)).days, (nxt - start).days
    charged = nce.line_amount(unit_price=unit, quantity=current, billing_days=days, cycle_days=cycle_days)
    stays = nce.line_amount(unit_price=unit, quantity=new_quantity, billing_days=days, cycle_days=cycle_days)
    assert result.refund_total + stays == charged
    assert sum(line.refund for line in result.batches) == result.refund_total


@COMMON
@given(reductions())
def test_refund_never_exceeds_what_was_charged_for_those_seats(case):
    anchor, _batches, current, _new_quantity, now, unit, cycle = case
    result = plan(*case)
    start, nxt = nce.charge_cycle(anchor, cycle, now)
    cycle_days = (nxt - start).days
    # What was charged for the seats given back, from the day each was charged in this cycle (or from
    # today once past 24 hours). Seats with the same first day share one pair of rounded lines, so
    # the bound is exact per such run, to the cent.
    runs: list[list] = []
    for line in result.batches:
        days = nce.refund_days(added_at=line.added_at, now=now, cycle=(start, nxt))
        exact = unit * line.seats * days / Decimal(cycle_days)
        if runs and runs[-1][0] == days:
            runs[-1][1] += exact
        else:
            runs.append([days, exact])
    assert result.refund_total <= sum(exact.quantize(CENT, rounding=ROUND_UP) for _, exact in runs)
    assert result.refund_total <= nce.line_amount(unit_price=unit, quantity=current, billing_days=cycle_days,
                                                  cycle_days=cycle_days)
    assert result.refund_total >= 0


@COMMON
@given(moments, st.integers(0, 86399), st.integers(1, 300), prices, cycles)
def test_cancellation_inside_24_hours_refunds_everything(bought, seconds, quantity, unit, cycle):
    now = bought + timedelta(seconds=seconds)
    result = plan(bought, [Batch(quantity, bought)], quantity, 0, now, unit, cycle)
    assert result.allowed and result.refund_type == "Full"
    assert result.refund_total == unit * quantity
    assert next(kind for kind, _ in nce.refund_options(bought_at=bought, now=now)) == "Full"


@COMMON
@given(reductions(max_age=timedelta(days=8)))
def test_portal_and_emulator_agree(case):
    anchor, batches, current, new_quantity, now, unit, cycle = case
    result = plan(*case)
    sub = {"termStart": iso(anchor), "billingCycle": cycle, "quantity": current,
           "batches": [{"quantity": b.quantity, "addedAt": iso(b.added_at)} for b in batches]}
    refundable = sum(b["quantity"] for b in emu.refundable_batches(sub, now))
    assert refundable == result.refundable_now
    if not result.allowed:
        return
    taken = emu.take_seats(sub, current - new_quantity, now)
    assert sum(seats for _, seats in taken) == current - new_quantity
    assert emu.refund_of(emu.seat_change_lines(sub, new_quantity, now, unit, taken)) == result.refund_total


@st.composite
def upgrades(draw):
    """A subscription of any size upgraded (in full or in part) at any moment of its term."""
    anchor = draw(moments)
    now = anchor + timedelta(seconds=draw(st.integers(0, 365 * 86400)))
    source_seats = draw(st.integers(1, 300))
    return (anchor, now, source_seats, draw(st.integers(1, source_seats)), draw(st.integers(0, 50)),
            draw(prices), draw(prices), draw(cycles))


@COMMON
@given(upgrades())
def test_an_upgrade_credits_no_more_than_was_charged_and_both_sides_agree(case):
    anchor, now, source_seats, moved, target_seats, source_unit, target_unit, cycle = case
    result = nce.upgrade_charges(source_unit=source_unit, target_unit=target_unit, billing_cycle=cycle, anchor=anchor,
                                 now=now, source_seats=source_seats, seats_moved=moved, target_seats=target_seats)
    start, nxt = nce.charge_cycle(anchor, cycle, now)
    days, cycle_days = (nxt - nce.utc_day(now)).days, (nxt - start).days
    # Credit plus what the source keeps equals the source's line for the days left (wipe and recreate);
    # the credit never exceeds what was charged for the moved seats over those days, to the cent;
    # upgrades have no 24-hour full refund, so the days always run from today.
    keeps = nce.line_amount(unit_price=source_unit, quantity=source_seats - moved, billing_days=days,
                            cycle_days=cycle_days)
    assert result.credit + keeps == nce.line_amount(unit_price=source_unit, quantity=source_seats,
                                                    billing_days=days, cycle_days=cycle_days)
    assert 0 <= result.credit <= (source_unit * moved * days / Decimal(cycle_days)).quantize(CENT, rounding=ROUND_UP)
    assert 0 <= result.charge <= (target_unit * moved * days / Decimal(cycle_days)).quantize(CENT, rounding=ROUND_UP)
    # The emulator's own copy gives the same two figures.
    sub = {"termStart": iso(anchor), "billingCycle": cycle}
    assert emu.refund_of(emu.convert_lines(sub, source_seats, source_seats - moved, now, source_unit)) == result.credit
    assert -emu.refund_of(emu.convert_lines(sub, target_seats, target_seats + moved, now, target_unit)) == result.charge
