"""Billing in the browser: add a card through the processor's hosted page, see an invoice, download
its PDF, pay it. The invoice comes from the real billing run; the card from the test gateway."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing.models import Invoice
from billing.services.invoices import billing_run_organization
from core.tenancy import tenant_context
from licensing import nce
from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
START = datetime(2026, 1, 15, 10, tzinfo=UTC)


def test_add_a_card_see_an_invoice_download_its_pdf_and_pay_it(page, make_member):
    member = make_member(role="billing_admin")
    org = member.organization
    sub = SubscriptionFactory(organization=org, unit_price=Decimal("30.00"), quantity=5, start_date=START,
                              commitment_end=nce.term_end(START, "P1Y"), product_title="Microsoft 365 Business Basic")
    SeatBatchFactory(subscription=sub, quantity=5, added_at=START)
    [invoice] = billing_run_organization(organization=org, month=date(2026, 1, 1),
                                         now=datetime(2026, 2, 1, tzinfo=UTC))
    sign_in(page, email=member.email, app=member.app, path=f"/o/{org.slug}/billing/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Billing")

    page.get_by_role("link", name="Payment methods").click()
    expect(page.get_by_text("No saved card")).to_be_visible()
    page.get_by_role("button", name="Add a card").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Test card processor")
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_label("Expiry (MM/YY)").fill("12/30")
    page.get_by_label("Security code").fill("123")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("row").filter(has_text="Visa ending 0002")).to_be_visible()

    page.get_by_role("link", name="Billing overview").click()
    page.get_by_role("link", name=invoice.number).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(invoice.number)
    expect(page.get_by_text("5 seats × USD 30.00")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download PDF").click()
    assert download.value.suggested_filename == f"{invoice.number}.pdf"

    # The declined test card: a clear message, the invoice stays open.
    page.get_by_role("button", name="Pay now").click()
    expect(page.get_by_text("declined by its bank")).to_be_visible()

    page.goto(f"/o/{org.slug}/billing/payment-methods/")
    page.get_by_role("button", name="Add a card").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry (MM/YY)").fill("12/30")
    page.get_by_label("Security code").fill("123")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("row").filter(has_text="Visa ending 4242")).to_be_visible()
    page.goto(f"/o/{org.slug}/billing/invoices/{invoice.pk}/")
    page.get_by_label("Card").select_option(label="Visa ending 4242 (expires 12/2030)")
    page.get_by_role("button", name="Pay now").click()
    expect(page.get_by_text(f"Paid USD {invoice.total} with Visa ending 4242")).to_be_visible()
    with tenant_context(org):
        assert Invoice.objects.for_org(org).get(pk=invoice.pk).status == Invoice.Status.PAID
