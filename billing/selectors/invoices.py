"""Reads of invoices and spend, always scoped to one organisation."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db.models import F, Prefetch, Q, QuerySet, Sum

from billing.models import Invoice, InvoiceLine, Payment, PaymentMethod, Refund
from core.timezones import organization_zone
from licensing import nce


def invoices_for(organization, *, kind: str = "", status: str = "", search: str = "") -> QuerySet:
    rows = Invoice.objects.for_org(organization)
    if kind in Invoice.Kind.values:
        rows = rows.filter(kind=kind)
    if status in Invoice.Status.values:
        rows = rows.filter(status=status)
    if search:
        rows = rows.filter(Q(number__icontains=search) | Q(lines__description__icontains=search)).distinct()
    return rows.order_by("-issued_at", "-sequence_number")


def invoice_lines(organization, invoice: Invoice) -> QuerySet:
    return InvoiceLine.objects.for_org(organization).filter(invoice=invoice).select_related("subscription")


def reconciliation_rows(organization) -> QuerySet:
    """Every billed line (not tax) with its invoice and subscription, oldest first."""
    return (InvoiceLine.objects.for_org(organization).exclude(kind=InvoiceLine.Kind.TAX)
            .select_related("invoice", "subscription").order_by("invoice__issued_at", "invoice__number", "position"))


def outstanding(organization) -> dict[str, Decimal]:
    """What is still to pay, per currency: the balance of open, partly paid and overdue invoices."""
    rows = (Invoice.objects.for_org(organization)
            .filter(kind=Invoice.Kind.INVOICE,
                    status__in=[Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID, Invoice.Status.OVERDUE])
            .values("currency").annotate(total=Sum(F("total") - F("amount_paid"))).order_by("currency"))
    return {r["currency"]: r["total"] for r in rows}


def spend_by_month(organization, *, months: int = 12,
                   today: date | None = None) -> dict[str, list[tuple[str, Decimal]]]:
    """Net billed (invoices less credit notes, void invoices left out) per month of the organisation's
    time zone, for the last ``months`` months, per currency: the spend chart's points."""
    zone = organization_zone(organization)
    today = today or datetime.now(UTC).astimezone(zone).date()
    first = date(today.year, today.month, 1)
    keys = [nce.add_months(first_dt, -i).date() for first_dt in [_as_dt(first)] for i in range(months - 1, -1, -1)]
    totals: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    rows = (Invoice.objects.for_org(organization).exclude(status=Invoice.Status.VOID)
            .filter(issued_at__date__gte=keys[0]).values_list("currency", "issued_at", "total"))
    for currency, issued_at, total in rows:
        local = issued_at.astimezone(zone).date()
        totals[currency][date(local.year, local.month, 1)] += total
    return {currency: [(key.strftime("%b %Y"), by_month.get(key, Decimal("0.00"))) for key in keys]
            for currency, by_month in sorted(totals.items())}


def _as_dt(day: date) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=UTC)


def payment_methods(organization) -> QuerySet:
    return PaymentMethod.objects.for_org(organization).filter(removed_at=None)


def payments_for(organization, invoice: Invoice) -> QuerySet:
    """The invoice's payments, each with its refunds (``payment.refunds.all()``), oldest first."""
    return (Payment.objects.for_org(organization).filter(invoice=invoice).select_related("payment_method")
            .prefetch_related(Prefetch("refunds", queryset=Refund.objects.for_org(organization)
                                       .order_by("refunded_at")))
            .order_by("received_at"))
