"""The price a customer pays for an offer: a hook the billing floor fills.

Licensing sits below billing (docs/decisions/009-layers.md), so it cannot import billing's price
lists. Billing registers its resolver with :func:`register_price_resolver` in
``billing.apps.BillingConfig.ready()``. Until something registers (licensing on its own, in a test
that does not load billing), the price is Microsoft's list price plus
``settings.LICENSING_DEFAULT_MARGIN_PERCENT``, in the offer's currency.

A resolver takes ``organization``, ``prices`` (a list of ``licensing.Price``) and ``at`` (an aware
datetime) as keywords and returns, for each price in order, a :class:`CustomerPrice`, or ``None`` when the
offer has no price. It quotes a list at once so that a page of offers reads the organisation's price terms
once, not once per offer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils import timezone

CENT = Decimal("0.01")


@dataclass(frozen=True)
class CustomerPrice:
    """One seat for one billing period, in the currency the customer is billed in."""

    amount: Decimal
    currency: str
    explanation: str = ""


PriceResolver = Callable[..., "list[CustomerPrice | None]"]

_resolver: PriceResolver | None = None


def register_price_resolver(resolver: PriceResolver | None) -> None:
    """Install (or, with None, remove) the resolver; the last registration wins."""
    global _resolver
    _resolver = resolver


def default_margin() -> Decimal:
    return Decimal(str(settings.LICENSING_DEFAULT_MARGIN_PERCENT))


def list_price_plus_default_margin(*, organization, prices, at: datetime | None = None) -> list[CustomerPrice | None]:
    return [None if price.list_price is None else CustomerPrice(
        (price.list_price * (Decimal(100) + default_margin()) / Decimal(100)).quantize(CENT, ROUND_HALF_UP),
        price.currency, f"List price plus the default {default_margin()}% margin.") for price in prices]


def customer_prices(*, organization, prices, at: datetime | None = None) -> list[CustomerPrice | None]:
    """The price of each offer, in order (``None`` where there is none)."""
    resolver = _resolver or list_price_plus_default_margin
    return resolver(organization=organization, prices=list(prices), at=at or timezone.now())


def customer_price(*, organization, price, at: datetime | None = None) -> CustomerPrice | None:
    """The price of one offer: :func:`customer_prices` of one."""
    return customer_prices(organization=organization, prices=[price], at=at)[0]
