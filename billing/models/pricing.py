"""Price lists: margin rules with effective dates, exchange rates, and each organisation's billing profile.

Microsoft's cost is not stored here: it is the partner price Partner Center's price sheet gives,
synced into ``licensing.Price.list_price`` by ``licensing.services.catalog.catalog_sync``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from core.fields import EncryptedJSONField
from core.models import BaseModel, TenantModel
from core.registry import Category, Personal, Retention, Subject, declare


class Tier(models.TextChoices):
    """Customer tiers staff assign; margin rules can target one."""

    STANDARD = "standard", "Standard"
    SILVER = "silver", "Silver"
    GOLD = "gold", "Gold"
    ENTERPRISE = "enterprise", "Enterprise"


class MarginRule(BaseModel):
    """A margin on Microsoft's cost, for a product family, a customer tier or one customer.

    The most specific rule in effect wins: a customer's own rule, then a tier's, then a family's
    rule alone; within each, a rule naming a family beats one that does not, and among equals the
    latest ``effective_from`` wins. Dates are UTC days; ``effective_to`` is exclusive.
    """

    customer = models.ForeignKey(settings.TENANT_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                                 related_name="+", help_text="A per-customer override; empty for everyone.")
    tier = models.CharField(max_length=16, choices=Tier.choices, blank=True)
    product_family = models.CharField(max_length=64, blank=True,
                                      help_text="As the catalog shows it, e.g. 'Microsoft 365'; empty for all.")
    margin_percent = models.DecimalField(max_digits=6, decimal_places=2,
                                         validators=[MinValueValidator(-50), MaxValueValidator(500)])
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-effective_from"]
        constraints = [
            models.CheckConstraint(condition=Q(customer__isnull=True) | Q(tier=""), name="margin_customer_or_tier"),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__gt=models.F("effective_from")),
                name="margin_dates_ordered"),
            models.UniqueConstraint(fields=["customer", "tier", "product_family", "effective_from"],
                                    name="margin_rule_once_per_start", nulls_distinct=False),
        ]

    def clean(self):
        if self.customer_id and self.tier:
            raise ValidationError({"tier": "A rule is for one customer or for a tier, not both."})
        if self.effective_to and self.effective_to <= self.effective_from:
            raise ValidationError({"effective_to": "The end date must come after the start date."})

    @property
    def specificity(self) -> tuple[int, int, int]:
        return (bool(self.customer_id), bool(self.tier), bool(self.product_family))

    def __str__(self):
        who = str(self.customer) if self.customer_id else (self.get_tier_display() if self.tier else "Everyone")
        return f"{who} · {self.product_family or 'all families'}: {self.margin_percent}% from {self.effective_from}"


declare(MarginRule, not_personal=["customer", "tier", "product_family", "margin_percent", "effective_from",
                                  "effective_to", "note"])


class ExchangeRate(BaseModel):
    """How many units of ``quote`` one unit of ``base`` buys, from a UTC day on (staff maintain these)."""

    base = models.CharField(max_length=3)
    quote = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=18, decimal_places=8, validators=[MinValueValidator(0)])
    effective_from = models.DateField()

    class Meta:
        ordering = ["base", "quote", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["base", "quote", "effective_from"], name="exchange_rate_once_per_day"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchange_rate_positive"),
        ]

    def __str__(self):
        return f"1 {self.base} = {self.rate} {self.quote} from {self.effective_from}"


declare(ExchangeRate, not_personal=["base", "quote", "rate", "effective_from"])


class BillingProfile(TenantModel):
    """How one organisation is billed. Its legal name, address and tax id live on the organisation
    (encrypted there); the contacts who receive invoices are encrypted here."""

    currency = models.CharField(max_length=3, default="USD")
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    payment_terms_days = models.PositiveSmallIntegerField(default=30, validators=[MaxValueValidator(120)])
    tax_exempt = models.BooleanField(default=False, help_text="A certificate on file exempts the customer from tax.")
    # [{"name": str, "email": str}], who receives invoices.
    contacts = EncryptedJSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="one_billing_profile_per_org")]

    def __str__(self):
        return f"Billing profile of {self.organization_id}"


declare(
    BillingProfile,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={"contacts": Personal(Category.CONTACT, Retention.BILLING_RECORD)},
    not_personal=["currency", "tier", "payment_terms_days", "tax_exempt"],
)
