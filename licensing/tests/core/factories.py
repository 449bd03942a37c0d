"""Factories for the licensing core (catalog, subscriptions, outbox). Real services build the rest."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.tests.factories import OrganizationFactory
from licensing.models import Availability, DirectoryUser, Price, Product, SeatBatch, Sku, Subscription, TenantSku


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    product_id = factory.Sequence(lambda n: f"CFQ7TTC0T{n:03d}")
    title = factory.Sequence(lambda n: f"Microsoft 365 Test {n}")
    family = "Microsoft 365"


class SkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sku

    product = factory.SubFactory(ProductFactory)
    sku_id = "0001"
    title = factory.SelfAttribute("product.title")
    provisioning_id = factory.Faker("uuid4")
    minimum_quantity = 1
    maximum_quantity = 300
    billing_cycles = ["annual", "monthly"]


class AvailabilityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Availability

    sku = factory.SubFactory(SkuFactory)
    availability_id = factory.Sequence(lambda n: f"AV{n:06d}")
    catalog_item_id = factory.LazyAttribute(lambda o: f"{o.sku.product.product_id}:{o.sku.sku_id}:{o.availability_id}")


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Price

    availability = factory.SubFactory(AvailabilityFactory)
    term_duration = "P1Y"
    billing_cycle = "monthly"
    list_price = Decimal("22.00")
    cancellation_window = "P7D"


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    organization = factory.SubFactory(OrganizationFactory)
    sku = factory.SubFactory(SkuFactory)
    ms_subscription_id = factory.Faker("uuid4")
    catalog_item_id = factory.LazyAttribute(lambda o: f"{o.sku.product.product_id}:{o.sku.sku_id}:AV")
    product_title = factory.SelfAttribute("sku.title")
    status = Subscription.Status.ACTIVE
    quantity = 10
    term_duration = "P1Y"
    billing_cycle = "monthly"
    unit_price = Decimal("30.00")
    start_date = factory.LazyFunction(timezone.now)
    commitment_end = factory.LazyAttribute(lambda o: o.start_date + timedelta(days=365))
    cancellation_allowed_until = factory.LazyAttribute(lambda o: o.start_date + timedelta(days=7))


class SeatBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SeatBatch

    subscription = factory.SubFactory(SubscriptionFactory)
    organization = factory.SelfAttribute("subscription.organization")
    source = SeatBatch.Source.PURCHASE
    quantity = 10
    added_at = factory.LazyFunction(timezone.now)
    refundable_until = factory.LazyAttribute(lambda o: o.added_at + timedelta(days=7))


class TenantSkuFactory(factory.django.DjangoModelFactory):
    """A seat pool as Graph's subscribedSkus would report it."""

    class Meta:
        model = TenantSku

    organization = factory.SubFactory(OrganizationFactory)
    sku_id = factory.Faker("uuid4", cast_to=None)
    sku_part_number = factory.Sequence(lambda n: f"TEST_SKU_{n}")
    display_name = factory.Sequence(lambda n: f"Test License {n}")
    purchased = 10


class DirectoryUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DirectoryUser

    organization = factory.SubFactory(OrganizationFactory)
    graph_id = factory.Faker("uuid4", cast_to=None)
    display_name = factory.Sequence(lambda n: f"User {n}")
    user_principal_name = factory.Sequence(lambda n: f"user{n}@contoso.example")
    usage_location = "US"
    has_usage_location = True
