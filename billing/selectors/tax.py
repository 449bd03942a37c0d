"""Which tax applies to an organisation's documents: the rate table, exemption and reverse charge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Q

from billing.models import BillingProfile, TaxRate

EU = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})


@dataclass(frozen=True)
class TaxTreatment:
    name: str
    rate_percent: Decimal
    note: str = ""


def _country(organization) -> str:
    address = organization.billing_address or {}
    return (address.get("country") or organization.country or "").upper()


def _region(organization) -> str:
    return ((organization.billing_address or {}).get("region") or "").upper()


def _in_effect(day: date):
    return TaxRate.objects.filter(Q(effective_to__isnull=True) | Q(effective_to__gt=day), effective_from__lte=day)


def _most_specific(rates) -> TaxRate | None:
    return max(rates, key=lambda r: (bool(r.region), r.effective_from), default=None)


def tax_rate(*, country: str, region: str, day: date) -> TaxRate | None:
    """The region's rate if the table has one, else the country's."""
    return _most_specific(_in_effect(day).filter(country=country, region__in=[region, ""] if region else [""]))


class TaxRateTable:
    """Every rate in effect on one day, read in one query: the billing run taxes all its documents on the
    day it runs, so it reads the table once rather than once per organisation."""

    def __init__(self, day: date):
        self.day = day
        self._by_country: dict[str, list[TaxRate]] = {}
        for rate in _in_effect(day).order_by():
            self._by_country.setdefault(rate.country, []).append(rate)

    def rate(self, *, country: str, region: str) -> TaxRate | None:
        """What ``tax_rate`` answers for ``country`` and ``region`` on the table's day."""
        regions = {region, ""} if region else {""}
        return _most_specific(r for r in self._by_country.get(country, ()) if r.region in regions)


def tax_treatment(*, organization, profile: BillingProfile, day: date,
                  rates: TaxRateTable | None = None) -> TaxTreatment:
    """``rates``: the table read once for ``day`` (the billing run); without it, the rate is read here."""
    if profile.tax_exempt:
        return TaxTreatment("Tax", Decimal("0"), "Exempt: the customer's exemption certificate is on file.")
    country = _country(organization)
    seller = settings.BILLING_SELLER_COUNTRY.upper()
    # The tax id was checked by python-stdnum for its country when it was saved (accounts.org_settings).
    if organization.tax_id and country in EU and seller in EU and country != seller:
        return TaxTreatment("VAT", Decimal("0"),
                            f"Reverse charge: VAT is due by the customer (VAT id {organization.tax_id}), "
                            "Article 196 of Directive 2006/112/EC.")
    if rates is not None and rates.day == day:
        rate = rates.rate(country=country, region=_region(organization))
    else:
        rate = tax_rate(country=country, region=_region(organization), day=day)
    if rate is None:
        return TaxTreatment("Tax", Decimal("0"), f"No tax rate is configured for {country or 'this country'}.")
    return TaxTreatment(rate.name, rate.rate_percent)
