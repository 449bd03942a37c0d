"""The demo's billing: invoices for each closed month of its subscriptions, issued on the 1st, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.tests.factories import OrganizationFactory
from billing.demo import seed_billing_demo
from billing.models import Invoice, Payment, PaymentMethod
from licensing import nce
from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_demo_billing_issues_one_invoice_per_closed_month_and_is_idempotent():
    now = datetime(2026, 12, 7, 9, tzinfo=UTC)
    org = OrganizationFactory(slug="fabrikam-test", billing_address={"line1": "1 Way", "city": "Redmond",
                                                                     "region": "WA", "postal_code": "98052",
                                                                     "country": "US"})
    start = now - timedelta(days=75)
    sub = SubscriptionFactory(organization=org, start_date=start, unit_price=Decimal("22.00"), quantity=25,
                              commitment_end=nce.term_end(start, "P1Y"))
    SeatBatchFactory(subscription=sub, quantity=25, added_at=start)
    first = seed_billing_demo(organization=org, now=now)
    invoices = list(Invoice.objects.for_org(org).order_by("issued_at"))
    assert [i.issued_at.date().isoformat() for i in invoices] == ["2026-10-01", "2026-11-01", "2026-12-01"]
    assert len(first["documents"]) == 3
    assert all(i.tax_rate_percent == Decimal("10.10") for i in invoices)
    assert seed_billing_demo(organization=org, now=now) == {"documents": []}
    statuses = list(Invoice.objects.for_org(org).order_by("issued_at").values_list("status", flat=True))
    assert statuses == ["paid", "paid", "open"]
    assert PaymentMethod.objects.for_org(org).count() == 1
    methods = sorted(Payment.objects.for_org(org).values_list("method", flat=True))
    assert methods == ["bank_transfer", "card"]


@pytest.mark.emulator
def test_demo_billing_on_the_seeded_demo_subscriptions(emulator, settings):
    """The licensing demo through the emulator, then billing: the subscription bought 75 days ago is billed
    for each closed month since, at the price reconcile found, with its Microsoft subscription id."""
    from accounts.roles import Role
    from accounts.tests.factories import MembershipFactory
    from billing.models import InvoiceLine
    from licensing import demo

    settings.MSEMULATOR_URL = emulator.base_url
    settings.MS_ADMIN_AGENT_REFRESH_TOKEN = ""
    member = MembershipFactory(role=Role.OWNER)
    org = member.organization
    demo.seed_licensing_demo(organization=org, actor=member.user, emulator_url=emulator.base_url,
                             ca_bundle=emulator.ca_path)
    result = seed_billing_demo(organization=org)
    assert len(result["documents"]) >= 2
    lines = InvoiceLine.objects.for_org(org).exclude(kind="tax")
    assert lines.exists() and all(line.ms_subscription_id and line.amount > 0 for line in lines)
    assert seed_billing_demo(organization=org) == {"documents": []}
