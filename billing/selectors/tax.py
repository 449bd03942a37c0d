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


def tax_rate(*, country: str, region: str, day: date) -> TaxRate | None:
    """The region's rate if the table has one, else the country's."""
    rates = TaxRate.objects.filter(Q(effective_to__isnull=True) | Q(effective_to__gt=day), country=country,
                                   effective_from__lte=day, region__in=[region, ""] if region else [""])
    return max(rates, key=lambda r: (bool(r.region), r.effective_from), default=None)


def tax_treatment(*, organization, profile: BillingProfile, day: date) -> TaxTreatment:
    if profile.tax_exempt:
        return TaxTreatment("Tax", Decimal("0"), "Exempt: the customer's exemption certificate is on file.")
    country = _country(organization)
    seller = settings.BILLING_SELLER_COUNTRY.upper()
    # The tax id was checked by python-stdnum for its country when it was saved (accounts.org_settings).
    if organization.tax_id and country in EU and seller in EU and country != seller:
        return TaxTreatment("VAT", Decimal("0"),
                            f"Reverse charge: VAT is due by the customer (VAT id {organization.tax_id}), "
                            "Article 196 of Directive 2006/112/EC.")
    rate = tax_rate(country=country, region=_region(organization), day=day)
    if rate is None:
        return TaxTreatment("Tax", Decimal("0"), f"No tax rate is configured for {country or 'this country'}.")
    return TaxTreatment(rate.name, rate.rate_percent)
