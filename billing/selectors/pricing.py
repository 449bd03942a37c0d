"""What a customer pays: Microsoft's cost, the margin rule in effect, the organisation's currency.

``customer_price`` is the resolver billing registers with ``licensing.pricing`` (see billing/apps.py),
so the catalog, orders and the API all quote from here.

The steps, rounded once at the end (half up, to the cent):
1. Microsoft's cost for the term and billing frequency: the partner price Partner Center's price
   sheet gives (``licensing.Price.list_price``). When the sheet lacks the monthly-billing row of an
   annual or three-year term, it is derived by Microsoft's rule: the up-front price spread over the
   months of the term, plus the monthly-billing premium (5% since 1 April 2025).
2. Plus the margin of the most specific rule in effect that day (MarginRule's docstring), or the
   default margin (``settings.LICENSING_DEFAULT_MARGIN_PERCENT``) when no rule applies.
3. Converted into the organisation's billing currency at the exchange rate in effect that day; no
   rate means no price ("price on request"), never a guess.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from billing.models import BillingProfile, ExchangeRate, MarginRule, Tier
from billing.money import round_line
from licensing import nce
from licensing.models import Price
from licensing.pricing import CustomerPrice


def billing_profile(organization) -> BillingProfile:
    """The organisation's profile, or an unsaved default one (USD, standard tier)."""
    return BillingProfile.objects.for_org(organization).first() or _default_profile(organization)


def billing_profiles(organizations) -> dict:
    """Organisation id -> ``billing_profile`` of each, in one query; the tenant context must cover them."""
    found = {p.organization_id: p for p in BillingProfile.objects.filter(
        organization_id__in=[organization.pk for organization in organizations])}
    return {organization.pk: found.get(organization.pk) or _default_profile(organization)
            for organization in organizations}


def _default_profile(organization) -> BillingProfile:
    return BillingProfile(organization=organization, currency=settings.BILLING_DEFAULT_CURRENCY, tier=Tier.STANDARD)


def _premium() -> Decimal:
    return Decimal(str(settings.BILLING_MONTHLY_BILLING_PREMIUM_PERCENT))


def microsoft_cost(price: Price) -> tuple[Decimal | None, str]:
    """Microsoft's price for one seat and one billing period, with how it was found."""
    if price.list_price is not None:
        return price.list_price, "Microsoft's price sheet"
    term_months = nce.TERM_MONTHS.get(price.term_duration)
    cycle_months = nce.CYCLE_MONTHS.get(price.billing_cycle)
    if not term_months or not cycle_months or cycle_months >= term_months:
        return None, ""
    upfront_cycle = {12: "annual", 36: "triennial"}[term_months]
    upfront = (Price.objects.filter(availability_id=price.availability_id, term_duration=price.term_duration,
                                    billing_cycle=upfront_cycle)
               .values_list("list_price", flat=True).first())
    if upfront is None:
        return None, ""
    cost = upfront * cycle_months / term_months * (Decimal(100) + _premium()) / Decimal(100)
    return cost, f"up-front price over {term_months // cycle_months} periods plus Microsoft's {_premium()}% premium"


def rules_in_effect(day: date):
    return MarginRule.objects.filter(Q(effective_to__isnull=True) | Q(effective_to__gt=day), effective_from__lte=day)


def margin_rule_for(*, organization, tier: str, family: str, day: date) -> MarginRule | None:
    """The most specific rule in effect: customer > tier > everyone; a named family beats all families."""
    candidates = rules_in_effect(day).filter(
        Q(customer=organization) | Q(customer__isnull=True, tier=tier) | Q(customer__isnull=True, tier=""),
        Q(product_family=family) | Q(product_family=""),
    )
    return max(candidates, key=lambda r: (r.specificity, r.effective_from), default=None)


def exchange_rate(*, base: str, quote: str, day: date) -> Decimal | None:
    if base == quote:
        return Decimal(1)
    return (ExchangeRate.objects.filter(base=base, quote=quote, effective_from__lte=day)
            .order_by("-effective_from").values_list("rate", flat=True).first())


def customer_price(*, organization, price: Price, at: datetime | None = None) -> CustomerPrice | None:
    at = at or timezone.now()
    day = at.astimezone(UTC).date()
    cost, source = microsoft_cost(price)
    if cost is None:
        return None
    profile = billing_profile(organization)
    family = price.availability.sku.product.family
    rule = margin_rule_for(organization=organization, tier=profile.tier, family=family, day=day)
    margin = rule.margin_percent if rule else Decimal(str(settings.LICENSING_DEFAULT_MARGIN_PERCENT))
    rate = exchange_rate(base=price.currency, quote=profile.currency, day=day)
    if rate is None:
        return None
    amount = round_line(cost * (Decimal(100) + margin) / Decimal(100) * rate)
    why = f"{source}, {'plus' if margin >= 0 else 'less'} {abs(margin)}% ({rule or 'default margin'})"
    if rate != 1:
        why += f", at 1 {price.currency} = {rate} {profile.currency}"
    return CustomerPrice(amount, profile.currency, why + ".")
