"""Billing for the demo organisation: a profile, a tier margin, a tax rate, the invoices the real
billing run issues for each closed month of its subscriptions' life (at most the last 12), a card on
the test gateway, and payments: older invoices paid by bank transfer, the one before last by card,
the latest left open.

Only for ``seed_demo`` (and tests). Idempotent: the run bills nothing twice, rules are created once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from billing.gateway import TestGateway
from billing.models import Invoice, MarginRule, PaymentMethod, TaxRate, Tier
from billing.services import invoices as invoice_services
from billing.services import payments as payment_services
from billing.services import pricing as pricing_services
from core.audit import Actor
from core.tenancy import tenant_context
from licensing import nce
from licensing.models import Subscription

DEMO = Actor.system("demo")


def _months_to_bill(first_start: datetime, now: datetime, limit: int = 12) -> list[date]:
    last_closed = invoice_services.previous_month(now)
    month = max(date(first_start.year, first_start.month, 1),
                nce.add_months(datetime(last_closed.year, last_closed.month, 1, tzinfo=UTC), 1 - limit).date())
    months = []
    while month <= last_closed:
        months.append(month)
        month = nce.add_months(datetime(month.year, month.month, 1, tzinfo=UTC), 1).date()
    return months


def seed_billing_demo(*, organization, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    with tenant_context(organization):
        pricing_services.billing_profile_update(
            organization=organization, actor=DEMO, currency="USD", tier=Tier.SILVER, payment_terms_days=30,
            contacts=[{"name": "Accounts payable", "email": f"ap@{organization.slug}.example"}])
    if not MarginRule.objects.filter(tier=Tier.SILVER, customer__isnull=True).exists():
        pricing_services.margin_rule_save(actor=DEMO, rule=MarginRule(
            tier=Tier.SILVER, margin_percent=Decimal("12.00"), effective_from=date(now.year - 1, 1, 1),
            note="Demo: silver partners pay 12% over Microsoft's price."))
    address = organization.billing_address or {}
    country, region = (address.get("country") or organization.country or "US").upper(), address.get("region", "")
    TaxRate.objects.get_or_create(country=country, region=region.upper(), effective_from=date(2020, 1, 1),
                                  defaults={"name": "Sales tax", "rate_percent": Decimal("10.10")})
    with tenant_context(organization):
        first = (Subscription.objects.for_org(organization).filter(start_date__isnull=False)
                 .order_by("start_date").values_list("start_date", flat=True).first())
    documents = []
    if first is not None:
        for month in _months_to_bill(first, now):
            issue_at = invoice_services.month_bounds(month)[1]
            documents += invoice_services.billing_run_organization(organization=organization, month=month,
                                                                   now=issue_at)
    _pay(organization, now)
    return {"documents": [d.number for d in documents]}


def _pay(organization, now: datetime) -> None:
    with tenant_context(organization):
        card = PaymentMethod.objects.for_org(organization).filter(removed_at=None).first()
    if card is None:
        token = TestGateway().tokenize(number="4242424242424242", exp_month=12, exp_year=now.year + 3, cvc="123")
        card = payment_services.payment_method_add(organization=organization, actor=DEMO, user=None, token=token)
    with tenant_context(organization):
        unpaid = list(Invoice.objects.for_org(organization).filter(
            kind=Invoice.Kind.INVOICE, status__in=payment_services.PAYABLE).order_by("issued_at"))
    for invoice in unpaid[:-2]:
        payment_services.payment_record_bank_transfer(
            organization=organization, actor=DEMO, user=None, invoice=invoice, amount=invoice.total,
            reference=f"Transfer {invoice.number}", received_at=invoice.issued_at + timedelta(days=12))
    if len(unpaid) >= 2:
        payment_services.invoice_pay_by_card(organization=organization, actor=DEMO, user=None, invoice=unpaid[-2],
                                             method=card, idempotency_key=f"demo:{unpaid[-2].pk}")
