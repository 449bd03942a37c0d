"""Azure consumption on the invoice, as pure functions: no database, no clock, no network.

Microsoft bills an Azure plan in arrears from metered usage. Partner Center's usage export (the
Graph billing export's JSON lines, which the fraud detection reads too) has one row per customer,
Azure subscription, meter and day, with ``Quantity`` and Microsoft's cost ``BillingPreTaxTotal`` in
``BillingCurrency``. :func:`fold_usage` adds a month's rows up per customer, Azure subscription and
meter; :func:`consumption_charge` turns one such total into an invoice line's charge:

    amount = Microsoft's cost x (100 + margin) / 100 x exchange rate, rounded once, half up, to the cent

with the margin of the pricing rule for the family "Azure" (billing.selectors.pricing), so the line
says which meter, how much of it, what Microsoft charged and what we added. The charge key names the
Azure subscription, the month and the meter, so a second run bills nothing twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from billing.charges import CONSUMPTION, Charge
from billing.money import round_line

AZURE_FAMILY = "Azure"


@dataclass
class MeterUsage:
    """A month of one meter in one Azure subscription of one customer."""

    customer_id: str
    azure_subscription_id: str
    category: str
    meter: str
    unit: str
    currency: str
    quantity: Decimal = Decimal("0")
    cost: Decimal = Decimal("0")
    rows: int = 0


def _decimal(value) -> Decimal:
    # The export's JSON numbers arrive as floats; their shortest repr is the number Microsoft wrote.
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise InvalidOperation(value)
    return amount


def fold_usage(rows, *, month: date) -> dict[str, list[MeterUsage]]:
    """Microsoft customer id -> that customer's meters used in ``month`` (its first day), summed.

    Rows of other months, and rows without a customer, subscription, date or number, are skipped:
    one malformed row must not stop everyone's billing (reconciliation shows what Microsoft billed).
    """
    totals: dict[tuple, MeterUsage] = {}
    for row in rows:
        try:
            day = date.fromisoformat(str(row["UsageDate"])[:10])
            quantity, cost = _decimal(row.get("Quantity", 0)), _decimal(row["BillingPreTaxTotal"])
        except (KeyError, ValueError, TypeError, InvalidOperation):
            continue
        if (day.year, day.month) != (month.year, month.month):
            continue
        customer, subscription = str(row.get("CustomerId") or ""), str(row.get("SubscriptionId") or "")
        if not customer or not subscription:
            continue
        category = str(row.get("MeterCategory") or row.get("ProductName") or "Azure")
        meter = str(row.get("MeterName") or row.get("SkuName") or "usage")
        currency = str(row.get("BillingCurrency") or "USD").upper()
        key = (customer, subscription, category, meter, currency)
        usage = totals.get(key)
        if usage is None:
            usage = totals[key] = MeterUsage(customer, subscription, category, meter,
                                             str(row.get("Unit") or row.get("UnitType") or "unit"), currency)
        usage.quantity += quantity
        usage.cost += cost
        usage.rows += 1
    out: dict[str, list[MeterUsage]] = {}
    for key in sorted(totals):
        out.setdefault(key[0], []).append(totals[key])
    return out


def consumption_key(usage: MeterUsage, month: date) -> str:
    meter = hashlib.sha256(f"{usage.category}|{usage.meter}|{usage.currency}".encode()).hexdigest()[:16]
    return f"azure:{usage.azure_subscription_id}:{month:%Y-%m}:{meter}"


def consumption_charge(usage: MeterUsage, *, period_start: datetime, period_end: datetime, margin_percent: Decimal,
                       margin_source: str, rate: Decimal, currency: str) -> Charge:
    """One line for one meter's month: Microsoft's cost plus the Azure margin, converted, rounded once."""
    amount = round_line(usage.cost * (Decimal(100) + margin_percent) / Decimal(100) * rate)
    month = period_start.date()
    quantity = usage.quantity.normalize()
    explanation = (
        f"{quantity:f} × {usage.unit} of {usage.category} · {usage.meter} in Azure subscription "
        f"{usage.azure_subscription_id}, {month:%B %Y} ({usage.rows} daily usage record"
        f"{'s' if usage.rows != 1 else ''}): Microsoft's cost {usage.currency} {usage.cost.normalize():f}, "
        f"{'plus' if margin_percent >= 0 else 'less'} {abs(margin_percent)}% ({margin_source})"
        + (f", at 1 {usage.currency} = {rate} {currency}" if rate != 1 else "")
        + f" = {currency} {amount}, rounded once, half up."
    )
    return Charge(
        CONSUMPTION, consumption_key(usage, month), period_start, 1, amount, amount, period_start, period_end,
        explanation, ms_subscription_id=usage.azure_subscription_id,
        description=f"Azure consumption: {usage.category} · {usage.meter}"[:300],
    )
