"""The Partner Center catalog, mirrored by a periodic sync. Shared by every organisation."""

from django.db import models

from core.models import BaseModel
from core.registry import declare


class Product(BaseModel):
    product_id = models.CharField(max_length=32, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    family = models.CharField(max_length=64, db_index=True)
    product_type = models.CharField(max_length=64, blank=True)
    target_view = models.CharField(max_length=64, blank=True)
    publisher = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["family", "title"]

    def __str__(self):
        return self.title


declare(
    Product,
    not_personal=[
        "product_id",
        "title",
        "description",
        "family",
        "product_type",
        "target_view",
        "publisher",
        "is_active",
        "synced_at",
    ],
)


class Sku(BaseModel):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="skus")
    sku_id = models.CharField(max_length=16)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    part_number = models.CharField(max_length=100, blank=True)
    # Graph's subscribedSkus.skuId: the link between a Partner Center subscription and tenant licenses.
    provisioning_id = models.CharField(max_length=64, blank=True, db_index=True)
    minimum_quantity = models.PositiveIntegerField(default=1)
    maximum_quantity = models.PositiveIntegerField(default=1)
    is_trial = models.BooleanField(default=False)
    is_addon = models.BooleanField(default=False)
    billing_cycles = models.JSONField(default=list, blank=True)
    upgrade_targets = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["product__title", "sku_id"]
        constraints = [models.UniqueConstraint(fields=["product", "sku_id"], name="sku_once_per_product")]

    def __str__(self):
        return self.title

    @property
    def catalog_id(self) -> str:
        return f"{self.product.product_id}:{self.sku_id}"


declare(
    Sku,
    not_personal=[
        "product",
        "sku_id",
        "title",
        "description",
        "part_number",
        "provisioning_id",
        "minimum_quantity",
        "maximum_quantity",
        "is_trial",
        "is_addon",
        "billing_cycles",
        "upgrade_targets",
        "is_active",
    ],
)


class Availability(BaseModel):
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="availabilities")
    availability_id = models.CharField(max_length=32)
    catalog_item_id = models.CharField(max_length=100, unique=True)
    country = models.CharField(max_length=2, default="US")
    segment = models.CharField(max_length=32, default="commercial")
    currency = models.CharField(max_length=3, default="USD")
    is_purchasable = models.BooleanField(default=True)
    is_renewable = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "availabilities"
        ordering = ["catalog_item_id"]

    def __str__(self):
        return self.catalog_item_id


declare(
    Availability,
    not_personal=[
        "sku",
        "availability_id",
        "catalog_item_id",
        "country",
        "segment",
        "currency",
        "is_purchasable",
        "is_renewable",
        "is_active",
    ],
)


class Price(BaseModel):
    """One purchasable term of an availability, with Microsoft's list price per seat and billing period."""

    class Term(models.TextChoices):
        MONTH = "P1M", "1 month"
        YEAR = "P1Y", "1 year"
        THREE_YEARS = "P3Y", "3 years"

    class BillingCycle(models.TextChoices):
        MONTHLY = "monthly", "Monthly"
        ANNUAL = "annual", "Annual"
        TRIENNIAL = "triennial", "Every three years"

    availability = models.ForeignKey(Availability, on_delete=models.CASCADE, related_name="prices")
    term_id = models.CharField(max_length=64, blank=True)
    term_duration = models.CharField(max_length=8, choices=Term.choices)
    billing_cycle = models.CharField(max_length=16, choices=BillingCycle.choices)
    list_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    # ISO 8601 duration of the refund window (P7D for New Commerce licenses), from cancellationPolicies.
    cancellation_window = models.CharField(max_length=16, blank=True)
    refund_type = models.CharField(max_length=16, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["availability", "term_duration", "billing_cycle"]
        constraints = [
            models.UniqueConstraint(
                fields=["availability", "term_duration", "billing_cycle"], name="price_once_per_term_and_cycle"
            ),
        ]

    def __str__(self):
        return f"{self.availability}: {self.term_duration} {self.billing_cycle}"


declare(
    Price,
    not_personal=[
        "availability",
        "term_id",
        "term_duration",
        "billing_cycle",
        "list_price",
        "currency",
        "cancellation_window",
        "refund_type",
        "is_active",
    ],
)


class ServicePlan(BaseModel):
    """A service plan's names from Microsoft's product names file: the code Graph reports
    (``EXCHANGE_S_STANDARD``) and the name the admin center shows ("Exchange Online (Plan 1)")."""

    service_plan_id = models.UUIDField(unique=True)
    name = models.CharField(max_length=200)
    friendly_name = models.CharField(max_length=300)

    class Meta:
        ordering = ["friendly_name"]

    def __str__(self):
        return self.friendly_name or self.name


declare(ServicePlan, not_personal=["service_plan_id", "name", "friendly_name"])
