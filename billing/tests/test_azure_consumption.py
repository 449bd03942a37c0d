"""Azure consumption lines: a month of the usage export, per Azure subscription and meter, with the
"Azure" margin rule, each line explained, billed once however often the run goes."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from pypdf import PdfReader

from accounts.models import MicrosoftTenant
from accounts.tests.factories import OrganizationFactory
from billing import azure
from billing.models import Invoice, InvoiceLine
from billing.pdf import invoice_pdf
from billing.services import invoices as invoice_services
from billing.services.azure import UsageExport, usage_export_for_last_month
from billing.tests.factories import BillingProfileFactory, ExchangeRateFactory, MarginRuleFactory
from billing.views import seller
from core.audit import Actor
from core.tenancy import tenant_context

pytestmark = pytest.mark.django_db
MARCH = date(2026, 3, 1)
AFTER_MARCH = datetime(2026, 4, 1, 2, tzinfo=UTC)
CUSTOMER, AZURE_SUB = "c0ffee00-0000-4000-8000-000000000001", "a2a2a2a2-0000-4000-8000-000000000002"


def row(day, category, meter, quantity, cost, *, customer=CUSTOMER, subscription=AZURE_SUB, unit="1 Hour"):
    return {"CustomerId": customer, "SubscriptionId": subscription, "UsageDate": f"{day}T00:00:00Z",
            "MeterCategory": category, "MeterName": meter, "Unit": unit, "Quantity": quantity,
            "BillingPreTaxTotal": cost, "BillingCurrency": "USD"}


# March: 24 hours of a D2s v5 VM at USD 0.096 over three days, 60.5 disk-months at 0.0032 over two.
ROWS = [
    row("2026-03-01", "Virtual Machines", "D2s v5 Linux", 10, 0.96),
    row("2026-03-02", "Virtual Machines", "D2s v5 Linux", 12.5, 1.2),
    row("2026-03-31", "Virtual Machines", "D2s v5 Linux", 1.5, 0.144),
    row("2026-03-05", "Storage", "E10 LRS Disk", 30.25, 0.0968, unit="1/Month"),
    row("2026-03-06", "Storage", "E10 LRS Disk", 30.25, 0.0968, unit="1/Month"),
    row("2026-04-01", "Virtual Machines", "D2s v5 Linux", 99, 9.5),  # April: another month's invoice
    {"CustomerId": CUSTOMER, "SubscriptionId": AZURE_SUB, "UsageDate": "2026-03-07"},  # no cost: skipped
    row("2026-03-03", "Virtual Machines", "D2s v5 Linux", 5, 0.48, customer="someone-else"),
]


@pytest.fixture(autouse=True)
def azure_margin():
    # A 20% rule for everything else (the factory's default) shows the Azure family's rule is the one used.
    MarginRuleFactory()
    return MarginRuleFactory(product_family="Azure", margin_percent=Decimal("15.00"))


def azure_customer(currency="USD", customer=CUSTOMER):
    org = OrganizationFactory()
    BillingProfileFactory(organization=org, currency=currency)
    with tenant_context(org):
        MicrosoftTenant.objects.create(organization=org, tenant_id=uuid.uuid4(), partner_customer_id=customer)
    return org


def consumption_lines(invoice):
    with tenant_context(invoice.organization):
        return list(invoice.lines.filter(kind=InvoiceLine.Kind.CONSUMPTION).order_by("position"))


def test_a_month_of_usage_folds_per_subscription_and_meter():
    usage = azure.fold_usage(ROWS, month=MARCH)
    [disk, vm] = usage[CUSTOMER]
    assert (vm.category, vm.meter, vm.quantity, vm.cost, vm.rows) == (
        "Virtual Machines", "D2s v5 Linux", Decimal("24.0"), Decimal("2.304"), 3)
    assert (disk.quantity, disk.cost, disk.unit) == (Decimal("60.50"), Decimal("0.1936"), "1/Month")
    assert set(usage) == {CUSTOMER, "someone-else"}


def test_the_run_bills_each_meter_with_the_azure_markup_once():
    org = azure_customer()
    export = UsageExport(MARCH, ROWS)
    [invoice] = invoice_services.billing_run_organization(organization=org, month=MARCH, now=AFTER_MARCH,
                                                         azure_usage=export)
    disk, vm = consumption_lines(invoice)
    # 2.304 x 1.15 = 2.6496 -> 2.65; 0.1936 x 1.15 = 0.22264 -> 0.22, each rounded once.
    assert (vm.amount, vm.quantity, vm.unit_price) == (Decimal("2.65"), 1, Decimal("2.65"))
    assert disk.amount == Decimal("0.22")
    assert invoice.total == Decimal("2.87") == sum(ln.amount for ln in consumption_lines(invoice))
    assert vm.ms_subscription_id == AZURE_SUB and vm.subscription is None
    assert vm.description == "Azure consumption: Virtual Machines · D2s v5 Linux"
    assert (vm.period_start, vm.period_end) == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert vm.explanation.startswith("24 × 1 Hour of Virtual Machines · D2s v5 Linux in Azure subscription")
    assert "Microsoft's cost USD 2.304, plus 15.00%" in vm.explanation and "= USD 2.65" in vm.explanation
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(invoice_pdf(
        invoice=invoice, lines=[*consumption_lines(invoice)], seller=seller()))).pages)
    assert "Azure consumption: Virtual Machines" in text and "Microsoft's cost USD 2.304" in text
    # A second run, even handed the export again, bills nothing twice.
    assert invoice_services.billing_run_organization(organization=org, month=MARCH, now=AFTER_MARCH,
                                                     azure_usage=export) == []
    assert InvoiceLine.unscoped_objects.filter(kind=InvoiceLine.Kind.CONSUMPTION).count() == 2


def test_consumption_is_converted_at_the_days_rate():
    ExchangeRateFactory(base="USD", quote="EUR", rate=Decimal("0.92"))
    org = azure_customer("EUR")
    [invoice] = invoice_services.billing_run_organization(organization=org, month=MARCH, now=AFTER_MARCH,
                                                         azure_usage=UsageExport(MARCH, ROWS))
    vm = consumption_lines(invoice)[1]
    # 2.304 x 1.15 x 0.92 = 2.437632 -> EUR 2.44.
    assert (invoice.currency, vm.amount) == ("EUR", Decimal("2.44"))
    assert "at 1 USD = 0.92000000 EUR = EUR 2.44" in vm.explanation


def test_without_a_rate_consumption_is_billed_in_microsofts_currency_never_at_a_guess():
    org = azure_customer("GBP")
    [invoice] = invoice_services.billing_run_organization(organization=org, month=MARCH, now=AFTER_MARCH,
                                                         azure_usage=UsageExport(MARCH, ROWS))
    assert invoice.currency == "USD" and consumption_lines(invoice)[1].amount == Decimal("2.65")


def test_an_azure_line_is_credited_like_any_other():
    org = azure_customer()
    [invoice] = invoice_services.billing_run_organization(organization=org, month=MARCH, now=AFTER_MARCH,
                                                         azure_usage=UsageExport(MARCH, ROWS))
    note = invoice_services.invoice_credit_in_full(invoice=invoice, actor=Actor.system("t"), reason="Disputed usage",
                                                   now=datetime(2026, 4, 3, tzinfo=UTC))
    assert note.total == -invoice.total
    with tenant_context(org):
        credit = note.lines.order_by("position").first()
    assert credit.ms_subscription_id == AZURE_SUB and credit.description.startswith("Azure consumption")
    assert Invoice.unscoped_objects.get(pk=invoice.pk).status == Invoice.Status.VOID


@pytest.mark.emulator
def test_the_usage_export_is_read_from_partner_center(emulator):
    from licensing.microsoft.client import default_client
    from msemulator.seed import FABRIKAM_ID

    org = azure_customer(customer=FABRIKAM_ID)
    now = datetime.now(UTC)  # the emulator's "last" period is the month before its clock's
    last_month = (now.date().replace(day=1) - timedelta(days=1)).replace(day=1)
    [invoice] = invoice_services.billing_run_organization(organization=org, month=last_month, now=now,
                                                         azure_usage=usage_export_for_last_month(last_month))
    lines = consumption_lines(invoice)
    graph = default_client().graph
    rows = [r for r in graph.iter_export_rows(graph.wait_for_export(
        operation_url=graph.request_unbilled_usage_export(billing_period="last"))) if r["CustomerId"] == FABRIKAM_ID]
    assert lines and {ln.ms_subscription_id for ln in lines} == {r["SubscriptionId"] for r in rows}
    for line in lines:
        meter = line.description.split(" · ")[1]
        cost = sum(Decimal(str(r["BillingPreTaxTotal"])) for r in rows
                   if r["MeterName"] == meter and r["SubscriptionId"] == line.ms_subscription_id)
        assert line.amount == (cost * Decimal("1.15")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_an_organisation_already_billed_does_not_ask_microsoft_for_the_export():
    org = azure_customer()
    invoice_services.billing_run_organization(organization=org, month=MARCH, now=AFTER_MARCH,
                                              azure_usage=UsageExport(MARCH, ROWS))

    def unreachable():
        raise AssertionError("the export was fetched for a month already billed")

    assert invoice_services.billing_run_organization(organization=org, month=MARCH, now=AFTER_MARCH,
                                                     azure_usage=UsageExport(MARCH, unreachable)) == []
