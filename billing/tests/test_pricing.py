"""Price lists: Microsoft's cost, margin rules by family, tier and customer with dates, currency, premium."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from accounts.tests.factories import OrganizationFactory
from billing.models import MarginRule, Tier
from billing.selectors.pricing import customer_prices, microsoft_costs
from billing.services.pricing import billing_profile_update, margin_rule_save
from billing.tests.factories import BillingProfileFactory, ExchangeRateFactory, MarginRuleFactory
from core.audit import Actor
from core.models import AuditEvent
from licensing import pricing
from licensing.services.catalog import customer_unit_price
from licensing.tests.core.factories import AvailabilityFactory, PriceFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def customer_price(*, organization, price, at=None):
    """One offer through billing's resolver, which quotes lists."""
    return customer_prices(organization=organization, prices=[price], at=at)[0]


def microsoft_cost(price):
    return microsoft_costs([price])[0]


@pytest.fixture
def price():
    return PriceFactory(term_duration="P1Y", billing_cycle="annual", list_price=Decimal("100.00"))


def test_billing_fills_the_licensing_hook(settings, price):
    settings.LICENSING_DEFAULT_MARGIN_PERCENT = Decimal("15")
    org = OrganizationFactory()
    MarginRuleFactory(product_family="Microsoft 365", margin_percent=Decimal("30"))
    # Through licensing's own entry point, the price comes from billing's rules, not the default margin.
    assert customer_unit_price(organization=org, price=price) == Decimal("130.00")
    assert pricing.customer_price(organization=org, price=price).currency == "USD"


def test_default_margin_without_rules(settings, price):
    settings.LICENSING_DEFAULT_MARGIN_PERCENT = Decimal("15")
    assert customer_price(organization=OrganizationFactory(), price=price).amount == Decimal("115.00")


def test_most_specific_rule_wins(price):
    org = OrganizationFactory()
    BillingProfileFactory(organization=org, tier=Tier.GOLD)
    MarginRuleFactory(margin_percent=Decimal("25"))  # everyone, every family
    MarginRuleFactory(product_family="Microsoft 365", margin_percent=Decimal("20"))
    assert customer_price(organization=org, price=price).amount == Decimal("120.00")
    MarginRuleFactory(tier=Tier.GOLD, margin_percent=Decimal("12"))
    assert customer_price(organization=org, price=price).amount == Decimal("112.00")
    MarginRuleFactory(tier=Tier.SILVER, margin_percent=Decimal("1"))  # another tier: ignored
    assert customer_price(organization=org, price=price).amount == Decimal("112.00")
    MarginRuleFactory(customer=org, margin_percent=Decimal("8"))
    assert customer_price(organization=org, price=price).amount == Decimal("108.00")
    MarginRuleFactory(customer=org, product_family="Microsoft 365", margin_percent=Decimal("5"))
    assert customer_price(organization=org, price=price).amount == Decimal("105.00")
    # Another customer's override never reaches this one.
    other = OrganizationFactory()
    assert customer_price(organization=other, price=price).amount == Decimal("120.00")


def test_effective_dates(price):
    org = OrganizationFactory()
    MarginRuleFactory(customer=org, margin_percent=Decimal("10"), effective_from=datetime.date(2026, 1, 1),
                      effective_to=datetime.date(2026, 7, 1))
    MarginRuleFactory(customer=org, margin_percent=Decimal("6"), effective_from=datetime.date(2026, 7, 1))
    at = datetime.datetime(2026, 6, 30, 23, 59, tzinfo=datetime.UTC)
    assert customer_price(organization=org, price=price, at=at).amount == Decimal("110.00")
    assert customer_price(organization=org, price=price, at=at + datetime.timedelta(minutes=1)).amount == Decimal(
        "106.00")
    with time_machine.travel(datetime.datetime(2026, 8, 1, tzinfo=datetime.UTC), tick=False):
        assert customer_unit_price(organization=org, price=price) == Decimal("106.00")


def test_currency_per_organisation_with_exchange_rate(price):
    org = OrganizationFactory()
    BillingProfileFactory(organization=org, currency="EUR")
    MarginRuleFactory(margin_percent=Decimal("10"))
    assert customer_price(organization=org, price=price) is None  # no rate: no price, never a guess
    ExchangeRateFactory(base="USD", quote="EUR", rate=Decimal("0.9"))
    quoted = customer_price(organization=org, price=price)
    assert (quoted.amount, quoted.currency) == (Decimal("99.00"), "EUR")
    assert "0.9" in quoted.explanation


def test_monthly_billing_premium_for_annual_terms_when_the_sheet_lacks_it():
    availability = AvailabilityFactory()
    PriceFactory(availability=availability, term_duration="P1Y", billing_cycle="annual", list_price=Decimal("216.00"))
    monthly = PriceFactory(availability=availability, term_duration="P1Y", billing_cycle="monthly", list_price=None)
    cost, how = microsoft_cost(monthly)
    assert cost == Decimal("18.90")  # 216 / 12 = 18.00, plus 5%
    assert "5" in how
    three_year = PriceFactory(availability=availability, term_duration="P3Y", billing_cycle="triennial",
                              list_price=Decimal("720.00"))
    annual_of_three = PriceFactory(availability=availability, term_duration="P3Y", billing_cycle="annual",
                                   list_price=None)
    assert microsoft_cost(annual_of_three)[0] == Decimal("252.00")  # 720 / 3 = 240, plus 5%
    assert three_year.list_price == Decimal("720.00")


def test_the_price_sheet_wins_over_the_derivation():
    availability = AvailabilityFactory()
    PriceFactory(availability=availability, term_duration="P1Y", billing_cycle="annual", list_price=Decimal("216.00"))
    monthly = PriceFactory(availability=availability, term_duration="P1Y", billing_cycle="monthly",
                           list_price=Decimal("18.95"))
    assert microsoft_cost(monthly)[0] == Decimal("18.95")


def test_margin_rule_service_validates_and_audits():
    org = OrganizationFactory()
    with pytest.raises(ValidationError):
        margin_rule_save(actor=SYSTEM, rule=MarginRule(customer=org, tier=Tier.GOLD, margin_percent=Decimal("5"),
                                                       effective_from=datetime.date(2026, 1, 1)))
    with pytest.raises(ValidationError):
        margin_rule_save(actor=SYSTEM, rule=MarginRule(margin_percent=Decimal("5"),
                                                       effective_from=datetime.date(2026, 1, 2),
                                                       effective_to=datetime.date(2026, 1, 1)))
    assert not MarginRule.objects.exists()
    rule = margin_rule_save(actor=SYSTEM, rule=MarginRule(customer=org, margin_percent=Decimal("5"),
                                                          effective_from=datetime.date(2026, 1, 1)))
    event = AuditEvent.unscoped_objects.get(action="billing.margin_rule_created")
    assert event.target_id == str(rule.pk) and event.metadata["margin_percent"] == "5"


def test_the_database_refuses_a_rule_for_customer_and_tier():
    with pytest.raises(IntegrityError):
        MarginRule.objects.create(customer=OrganizationFactory(), tier=Tier.GOLD, margin_percent=1,
                                  effective_from=datetime.date(2026, 1, 1))


def test_profile_refuses_an_unknown_currency():
    org = OrganizationFactory()
    with pytest.raises(ValidationError) as caught:
        billing_profile_update(organization=org, actor=SYSTEM, currency="XYZ")
    assert "XYZ is not a currency we bill in" in str(caught.value)
    profile = billing_profile_update(organization=org, actor=SYSTEM, currency="EUR",
                                     contacts=[{"name": "Ann", "email": "AP@Example.com"}])
    assert profile.contacts == [{"name": "Ann", "email": "ap@example.com"}]


def test_a_list_of_offers_is_quoted_as_each_alone_with_the_price_terms_read_once(django_assert_max_num_queries):
    # Families with rules of their own, a derived monthly price, a currency with and one without a rate: the
    # batch agrees offer by offer with quoting each alone, and its queries do not grow with the list.
    org = OrganizationFactory()
    BillingProfileFactory(organization=org, currency="EUR", tier=Tier.GOLD)
    ExchangeRateFactory(base="USD", quote="EUR", rate=Decimal("0.9"))
    MarginRuleFactory(margin_percent=Decimal("25"))
    MarginRuleFactory(product_family="Dynamics 365", margin_percent=Decimal("18"))
    MarginRuleFactory(tier=Tier.GOLD, product_family="Microsoft 365", margin_percent=Decimal("12"))
    MarginRuleFactory(customer=OrganizationFactory(), margin_percent=Decimal("1"))  # someone else's
    offers = []
    for n in range(6):
        availability = AvailabilityFactory(sku__product__family="Dynamics 365" if n % 2 else "Microsoft 365")
        offers.append(PriceFactory(availability=availability, term_duration="P1Y", billing_cycle="annual",
                                   list_price=Decimal("120.00") + n))
        offers.append(PriceFactory(availability=availability, term_duration="P1Y", billing_cycle="monthly",
                                   list_price=None))
    offers.append(PriceFactory(list_price=Decimal("10.00"), currency="GBP"))  # no GBP rate: no price
    offers.append(PriceFactory(term_duration="P1M", billing_cycle="monthly", list_price=None))  # nothing to derive
    alone = [customer_price(organization=org, price=offer) for offer in offers]
    # profile, rules, up-front prices, one rate per currency other than the profile's
    with django_assert_max_num_queries(5):
        together = customer_prices(organization=org, prices=offers)
    assert together == alone
    # 120 + 12% (gold, Microsoft 365), its monthly 120 / 12 + 5%, then 121 + 18% (Dynamics 365), at 0.9
    assert [q.amount for q in together[:4]] == [Decimal("120.96"), Decimal("10.58"), Decimal("128.50"),
                                                Decimal("11.24")]
    assert together[-2:] == [None, None] and {q.currency for q in together[:-2]} == {"EUR"}
    assert customer_prices(organization=org, prices=[]) == []
