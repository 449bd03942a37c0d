"""Properties of billing arithmetic (hypothesis): totals are sums of lines, prorated pieces of a
period sum to its price within a rounding unit per piece, a charge and its full credit net to zero."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.tests.factories import OrganizationFactory
from billing.charges import prorated_charge, utc_day
from billing.models import InvoiceLine, TaxRate
from billing.services import invoices as invoice_services
from core.audit import Actor
from licensing import nce
from licensing.models import SeatBatch
from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)
cycles = st.sampled_from(["monthly", "annual", "triennial"])
starts = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC))
DB = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@given(unit=prices, quantity=st.integers(1, 500), cycle=cycles, start=starts, cut=st.floats(0, 1))
def test_prorated_pieces_of_a_period_sum_to_its_price(unit, quantity, cycle, start, cut):
    period_start, period_end = nce.billing_period(start, cycle, start)
    days = (utc_day(period_end) - utc_day(period_start)).days
    split = int(days * cut)
    first = prorated_charge(unit_price=unit, quantity=quantity, charged_days=split, period_days=days)
    rest = prorated_charge(unit_price=unit, quantity=quantity, charged_days=days - split, period_days=days)
    assert abs(first + rest - unit * quantity) <= Decimal("0.01")


def _billed_subscription(org, unit, seats, cycle, added_days):
    start = datetime(2026, 1, 3, 9, tzinfo=UTC)
    term = "P3Y" if cycle == "triennial" else "P1Y"
    sub = SubscriptionFactory(organization=org, unit_price=unit, quantity=seats, billing_cycle=cycle,
                              term_duration=term, start_date=start, commitment_end=nce.term_end(start, term))
    SeatBatchFactory(subscription=sub, quantity=seats, added_at=start)
    for days in added_days:
        SeatBatchFactory(subscription=sub, source=SeatBatch.Source.ADDITION, quantity=1,
                         added_at=start + timedelta(days=days, hours=3))
    return sub


@pytest.mark.django_db
@DB
@given(subs=st.lists(st.tuples(prices, st.integers(1, 50), cycles, st.lists(st.integers(1, 27), max_size=3)),
                     min_size=1, max_size=4),
       rate=st.decimals(min_value=Decimal("0"), max_value=Decimal("27"), places=2))
def test_an_invoice_total_is_the_sum_of_its_lines(subs, rate):
    org = OrganizationFactory(country="NZ")
    TaxRate.objects.update_or_create(country="NZ", region="", effective_from=date(2020, 1, 1),
                                     defaults={"rate_percent": rate, "name": "GST"})
    for unit, seats, cycle, added in subs:
        _billed_subscription(org, unit, seats, cycle, added)
    [invoice] = invoice_services.billing_run_organization(organization=org, month=date(2026, 1, 1),
                                                         now=datetime(2026, 2, 1, tzinfo=UTC))
    amounts = list(InvoiceLine.objects.for_org(org).filter(invoice=invoice).values_list("kind", "amount"))
    assert invoice.total == sum(a for _, a in amounts)
    assert invoice.subtotal == sum(a for k, a in amounts if k != "tax")
    assert invoice.total == invoice.subtotal + invoice.tax_total


@pytest.mark.django_db
@DB
@given(unit=prices, seats=st.integers(1, 50), cycle=cycles, added=st.lists(st.integers(1, 27), max_size=3),
       rate=st.decimals(min_value=Decimal("0"), max_value=Decimal("27"), places=2))
def test_a_charge_followed_by_its_full_credit_nets_to_zero(unit, seats, cycle, added, rate):
    org = OrganizationFactory(country="NZ")
    TaxRate.objects.update_or_create(country="NZ", region="", effective_from=date(2020, 1, 1),
                                     defaults={"rate_percent": rate, "name": "GST"})
    _billed_subscription(org, unit, seats, cycle, added)
    [invoice] = invoice_services.billing_run_organization(organization=org, month=date(2026, 1, 1),
                                                         now=datetime(2026, 2, 1, tzinfo=UTC))
    note = invoice_services.invoice_credit_in_full(invoice=invoice, actor=Actor.system("test"), reason="Refund")
    assert invoice.total + note.total == 0
    assert invoice.tax_total + note.tax_total == 0
