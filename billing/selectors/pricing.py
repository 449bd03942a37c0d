"""What a customer pays: Microsoft's cost, the margin rule in effect, the organisation's currency.

``customer_prices`` is the resolver billing registers with ``licensing.pricing`` (see billing/apps.py),
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


def microsoft_costs(prices: list[Price]) -> list[tuple[Decimal | None, str]]:
    """Microsoft's price for one seat and one billing period of each offer, with how it was found. The up-front
    prices that monthly billing derives from are read in one query for all of them."""
    derived = {}
    for price in prices:
        term_months = nce.TERM_MONTHS.get(price.term_duration)
        cycle_months = nce.CYCLE_MONTHS.get(price.billing_cycle)
        if price.list_price is None and term_months and cycle_months and cycle_months < term_months:
            derived[price.pk] = (term_months, cycle_months, {12: "annual", 36: "triennial"}[term_months])
    upfront = {}
    if derived:
        wanted = {(price.availability_id, price.term_duration) for price in prices if price.pk in derived}
        rows = (Price.objects.filter(availability_id__in={a for a, _ in wanted},
                                     billing_cycle__in={cycle for _, _, cycle in derived.values()})
                .values_list("availability_id", "term_duration", "billing_cycle", "list_price"))
        upfront = {(a, term, cycle): amount for a, term, cycle, amount in rows if (a, term) in wanted}
    costs = []
    for price in prices:
        if price.list_price is not None:
            costs.append((price.list_price, "Microsoft's price sheet"))
            continue
        if price.pk not in derived:
            costs.append((None, ""))
            continue
        term_months, cycle_months, upfront_cycle = derived[price.pk]
        amount = upfront.get((price.availability_id, price.term_duration, upfront_cycle))
        if amount is None:
            costs.append((None, ""))
            continue
        cost = amount * cycle_months / term_months * (Decimal(100) + _premium()) / Decimal(100)
        costs.append((cost, f"up-front price over {term_months // cycle_months} periods plus Microsoft's "
                            f"{_premium()}% premium"))
    return costs


def rules_in_effect(day: date):
    return MarginRule.objects.filter(Q(effective_to__isnull=True) | Q(effective_to__gt=day), effective_from__lte=day)


def margin_rules(*, organization, tier: str, day: date) -> list[MarginRule]:
    """The rules in effect that day that could apply to the organisation: its own, its tier's, everyone's."""
    return list(rules_in_effect(day).filter(
        Q(customer=organization) | Q(customer__isnull=True, tier=tier) | Q(customer__isnull=True, tier="")))


def most_specific_rule(rules: list[MarginRule], family: str) -> MarginRule | None:
    """Of :func:`margin_rules`, the most specific for a product family: customer > tier > everyone; a named
    family beats all families."""
    return max((rule for rule in rules if rule.product_family in (family, "")),
               key=lambda r: (r.specificity, r.effective_from), default=None)


def margin_rule_for(*, organization, tier: str, family: str, day: date) -> MarginRule | None:
    """The most specific rule in effect for one product family (:func:`most_specific_rule`)."""
    return most_specific_rule(margin_rules(organization=organization, tier=tier, day=day), family)


def exchange_rate(*, base: str, quote: str, day: date) -> Decimal | None:
    if base == quote:
        return Decimal(1)
    return (ExchangeRate.objects.filter(base=base, quote=quote, effective_from__lte=day)
            .order_by("-effective_from").values_list("rate", flat=True).first())


def customer_prices(*, organization, prices: list[Price], at: datetime | None = None) -> list[CustomerPrice | None]:
    """What the organisation pays for each offer, ``None`` where it has no price. The profile and the margin
    rules are read once for all of them, each currency's exchange rate once: a catalog page of any length
    costs a handful of queries."""
    if not prices:
        return []
    at = at or timezone.now()
    day = at.astimezone(UTC).date()
    profile = billing_profile(organization)
    rules = margin_rules(organization=organization, tier=profile.tier, day=day)
    rates: dict[str, Decimal | None] = {}
    quotes = []
    for price, (cost, source) in zip(prices, microsoft_costs(prices), strict=True):
        if cost is None:
            quotes.append(None)
            continue
        rule = most_specific_rule(rules, price.availability.sku.product.family)
        margin = rule.margin_percent if rule else Decimal(str(settings.LICENSING_DEFAULT_MARGIN_PERCENT))
        if price.currency not in rates:
            rates[price.currency] = exchange_rate(base=price.currency, quote=profile.currency, day=day)
        rate = rates[price.currency]
        if rate is None:
            quotes.append(None)
            continue
        amount = round_line(cost * (Decimal(100) + margin) / Decimal(100) * rate)
        why = f"{source}, {'plus' if margin >= 0 else 'less'} {abs(margin)}% ({rule or 'default margin'})"
        if rate != 1:
            why += f", at 1 {price.currency} = {rate} {profile.currency}"
        quotes.append(CustomerPrice(amount, profile.currency, why + "."))
    return quotes
