"""Money in billing: ``Decimal`` amounts with an ISO 4217 currency, rounded once per line.

The rule (docs/decisions/016-billing.md): every invoice line's amount is computed at full precision
and rounded once, half up, to the cent; totals are sums of rounded lines, so a total always equals the
sum of what the customer sees. Refunds follow Microsoft's ROUNDDOWN rule through ``licensing.nce``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def round_line(amount: Decimal) -> Decimal:
    """The one rounding step of a line: half up, to the cent."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def validate_currency(code: str) -> None:
    """Only currencies we bill in (settings.BILLING_CURRENCIES, all with two decimals)."""
    if code not in settings.BILLING_CURRENCIES:
        allowed = ", ".join(settings.BILLING_CURRENCIES)
        raise ValidationError(f"{code or 'An empty code'} is not a currency we bill in. Use one of {allowed}.",
                              code="unknown_currency")


def parse_amount(value) -> Decimal:
    """A decimal amount from user input; floats are refused so no binary rounding sneaks in."""
    if isinstance(value, float):
        raise ValidationError("Amounts must be given as decimal strings, not floating point numbers.",
                              code="invalid_amount")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(f"{value!r} is not an amount.", code="invalid_amount") from None
    if not amount.is_finite():
        raise ValidationError(f"{value!r} is not an amount.", code="invalid_amount")
    return amount


def format_money(amount: Decimal, currency: str) -> str:
    return f"{currency} {round_line(amount):,.2f}"
