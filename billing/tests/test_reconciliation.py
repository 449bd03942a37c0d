"""Reconciliation against Microsoft's line items: leakage, over-billing, quantity and price mismatches,
money at risk per customer, and the import from the emulator over HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.tests.factories import OrganizationFactory
from billing.models import MicrosoftLineItem, ReconciliationFinding
from billing.services import invoices as invoice_services
from billing.services.reconciliation import reconciliation_run
from core.audit import Actor
from licensing import nce
from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
STAFF = Actor.system("test")
START = datetime(2026, 1, 15, 10, tzinfo=UTC)


def item(sub_id, start, quantity, unit, charge="new", ref=None):
    return {"subscriptionId": sub_id, "customerId": "c1", "chargeType": charge, "chargeStartDate": start.isoformat(),
            "chargeEndDate": start.isoformat(), "quantity": quantity, "unitPrice": float(unit),
            "subtotal": float(Decimal(unit) * quantity), "currency": "USD", "referenceId": ref or f"{sub_id}{start}",
            "productName": "Microsoft 365 Business Basic"}


def billed_subscription(org, *, seats=10, unit="30.00"):
    sub = SubscriptionFactory(organization=org, quantity=seats, unit_price=Decimal(unit), start_date=START,
                              commitment_end=nce.term_end(START, "P1Y"))
    SeatBatchFactory(subscription=sub, quantity=seats, added_at=START)
    for month in (1, 2):
        invoice_services.billing_run_organization(organization=org, month=date(2026, month, 1),
                                                  now=datetime(2026, month + 1, 1, tzinfo=UTC))
    return sub


def test_matching_reports_each_kind_with_money_at_risk():
    now = datetime(2026, 3, 10, tzinfo=UTC)
    agreed = billed_subscription(OrganizationFactory())
    leaky_org = OrganizationFactory()
    short = billed_subscription(leaky_org, seats=10)
    items = [
        item(agreed.ms_subscription_id, START, 10, "25.00"),  # billed at 30 over a 25 cost: fine
        item(agreed.ms_subscription_id, datetime(2026, 2, 15, 10, tzinfo=UTC), 10, "25.00", "cycleCharge"),
        item(short.ms_subscription_id, START, 12, "25.00"),  # Microsoft counts 12 seats, we billed 10
        item(short.ms_subscription_id, datetime(2026, 1, 20, 9, tzinfo=UTC), 3, "25.00", "addQuantity"),  # leak
        item(short.ms_subscription_id, datetime(2026, 2, 15, 9, tzinfo=UTC), 10, "31.00", "cycleCharge"),  # < cost
        item("ffffffff-0000-0000-0000-000000000000", START, 1, "9.00"),  # nobody's subscription
        item(agreed.ms_subscription_id, datetime(2026, 3, 2, tzinfo=UTC), 1, "5.00", "addQuantity"),  # month open
    ]
    run = reconciliation_run(actor=STAFF, items=iter(items), now=now)
    assert run.items == 7 and MicrosoftLineItem.objects.filter(run=run).count() == 7
    found = {(f.kind, f.ms_subscription_id): f for f in ReconciliationFinding.objects.filter(run=run)}
    kinds = {kind for kind, _ in found}
    assert kinds == {"quantity_mismatch", "leakage", "price_mismatch", "unknown_subscription"}
    assert not any(sub == agreed.ms_subscription_id for _, sub in found)
    leak = found[("leakage", short.ms_subscription_id)]
    assert (leak.ms_quantity, leak.at_risk, leak.organization_id) == (3, Decimal("75.00"), leaky_org.pk)
    mismatch = found[("quantity_mismatch", short.ms_subscription_id)]
    assert (mismatch.ms_quantity, mismatch.our_quantity, mismatch.at_risk) == (12, 10, Decimal("50.00"))
    assert found[("price_mismatch", short.ms_subscription_id)].at_risk == Decimal("10.00")  # 310 cost, 300 billed
    assert run.summary["not_yet_billed"] == "5.0"
    assert run.summary["at_risk_per_customer"][str(leaky_org.pk)] == "135.00"


def test_over_billing_is_what_we_billed_that_microsoft_did_not_charge():
    sub = billed_subscription(OrganizationFactory())
    items = [item(sub.ms_subscription_id, START, 10, "25.00")]  # February's cycle charge is missing
    run = reconciliation_run(actor=STAFF, items=iter(items), now=datetime(2026, 3, 10, tzinfo=UTC))
    [finding] = ReconciliationFinding.objects.filter(run=run)
    assert (finding.kind, finding.charge_day, finding.our_amount) == ("over_billing", date(2026, 2, 15),
                                                                     Decimal("300.00"))


@pytest.mark.emulator
def test_imports_unbilled_line_items_from_the_emulator(emulator):
    run = reconciliation_run(actor=STAFF, source="unbilled")
    assert run.status == "done" and run.items > 0
    assert MicrosoftLineItem.objects.filter(run=run).count() == run.items
    # None of the emulator's seeded customers is ours: every closed-month charge is unknown to us.
    assert set(ReconciliationFinding.objects.filter(run=run).values_list("kind", flat=True)) <= {
        "unknown_subscription"}
