"""Factories for billing. Invoices are built by the real billing run, not by factories."""

from __future__ import annotations

import datetime
from decimal import Decimal

import factory

from accounts.tests.factories import OrganizationFactory
from billing.models import BillingProfile, ExchangeRate, MarginRule, Tier


class MarginRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MarginRule

    margin_percent = Decimal("20.00")
    effective_from = datetime.date(2020, 1, 1)


class ExchangeRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExchangeRate

    base = "USD"
    quote = "EUR"
    rate = Decimal("0.92000000")
    effective_from = datetime.date(2020, 1, 1)


class BillingProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillingProfile

    organization = factory.SubFactory(OrganizationFactory)
    currency = "USD"
    tier = Tier.STANDARD
