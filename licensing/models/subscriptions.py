"""Orders and New Commerce subscriptions, with per-batch refund windows and a change ledger."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from core.models import TenantModel
from core.registry import Subject, declare
from licensing import nce

from .catalog import Price, Sku
from .provisioning import ProvisioningOperation


class Order(TenantModel):
    """A purchase the customer asked for: reviewed, maybe approved, then checked out through the outbox."""

    class Status(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "Waiting for owner approval"
        SUBMITTED = "submitted", "Submitted"
        ACCEPTED = "accepted", "Accepted by Microsoft"
        COMPLETED = "completed", "Seats visible in tenant"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected by owner"

    price = models.ForeignKey(Price, on_delete=models.PROTECT, related_name="+")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+")
    catalog_item_id = models.CharField(max_length=100)
    product_title = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    term_duration = models.CharField(max_length=8, choices=Price.Term.choices)
    billing_cycle = models.CharField(max_length=16, choices=Price.BillingCycle.choices)
    auto_renew = models.BooleanField(default=True)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(max_length=24, choices=Status.choices, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    operation = models.ForeignKey(
        ProvisioningOperation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ms_order_id = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    # The confirm form's (or the API's Idempotency-Key) token: a resubmitted confirmation finds this order.
    idempotency_key = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "idempotency_key"], condition=~Q(idempotency_key=""),
                                    name="order_idempotent"),
        ]

    def __str__(self):
        return f"{self.quantity} × {self.product_title}"


declare(
    Order,
    not_personal=[
        "price",
        "sku",
        "catalog_item_id",
        "product_title",
        "quantity",
        "term_duration",
        "billing_cycle",
        "auto_renew",
        "unit_price",
        "total",
        "currency",
        "status",
        "requested_by",
        "approved_by",
        "decided_at",
        "operation",
        "ms_order_id",
        "failure_reason",
        "idempotency_key",
    ],
)


class Subscription(TenantModel):
    """A New Commerce subscription as Partner Center knows it, kept true by reconcile."""

    class Status(models.TextChoices):
        PENDING = "pending", "Provisioning"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        EXPIRED = "expired", "Expired"
        DISABLED = "disabled", "Disabled"
        DELETED = "deleted", "Cancelled"

    order = models.ForeignKey(Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="subscriptions")
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    ms_subscription_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    ms_order_id = models.CharField(max_length=64, blank=True)
    catalog_item_id = models.CharField(max_length=100)
    product_title = models.CharField(max_length=200)
    friendly_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    quantity = models.PositiveIntegerField(default=0)
    term_duration = models.CharField(max_length=8, choices=Price.Term.choices)
    billing_cycle = models.CharField(max_length=16, choices=Price.BillingCycle.choices)
    auto_renew = models.BooleanField(default=True)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="USD")
    start_date = models.DateTimeField(null=True, blank=True)
    commitment_end = models.DateTimeField(null=True, blank=True, db_index=True)
    cancellation_allowed_until = models.DateTimeField(null=True, blank=True)
    # {"quantity": int, "term_duration": str, "billing_cycle": str, "catalog_item_id": str}
    scheduled_next_term = models.JSONField(null=True, blank=True)
    suspension_reason = models.CharField(max_length=300, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    # Field -> {"local": ..., "microsoft": ...} found by the last reconcile; staff see it.
    drift = models.JSONField(default=dict, blank=True)
    drift_detected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["product_title", "-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=0), name="subscription_quantity_not_negative"),
        ]

    def __str__(self):
        return self.friendly_name or self.product_title

    @property
    def is_live(self) -> bool:
        return self.status in (self.Status.ACTIVE, self.Status.PENDING)

    # The customer's dates, all from licensing.nce so that every surface shows the same ones.
    @property
    def term_ends_on(self):
        return nce.term_ends_on(self.commitment_end) if self.commitment_end else None

    @property
    def renews_on(self):
        return nce.renews_on(self.commitment_end) if self.commitment_end else None

    @property
    def last_day_to_reduce(self):
        return nce.last_day_to_reduce(self.commitment_end) if self.commitment_end else None

    @property
    def monthly_cost(self) -> Decimal:
        """Quantity times the customer's unit price, per month (an annual price is spread over 12 months)."""
        if self.billing_cycle not in nce.CYCLE_MONTHS:
            return (self.unit_price * self.quantity).quantize(nce.CENT)
        return nce.monthly_equivalent(self.unit_price, self.billing_cycle) * self.quantity


declare(
    Subscription,
    not_personal=[
        "order",
        "sku",
        "ms_subscription_id",
        "ms_order_id",
        "catalog_item_id",
        "product_title",
        "friendly_name",
        "status",
        "quantity",
        "term_duration",
        "billing_cycle",
        "auto_renew",
        "unit_price",
        "currency",
        "start_date",
        "commitment_end",
        "cancellation_allowed_until",
        "scheduled_next_term",
        "suspension_reason",
        "suspended_at",
        "last_reconciled_at",
        "drift",
        "drift_detected_at",
    ],
)


class SeatBatch(TenantModel):
    """Seats bought together (the purchase, a renewal, or a later addition), each with its own refund window."""

    class Source(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        ADDITION = "addition", "Seats added"
        RENEWAL = "renewal", "Renewal"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="seat_batches")
    source = models.CharField(max_length=16, choices=Source.choices)
    quantity = models.PositiveIntegerField()
    # Seats of this batch given back within the window.
    refunded = models.PositiveIntegerField(default=0)
    added_at = models.DateTimeField()
    refundable_until = models.DateTimeField()

    class Meta:
        ordering = ["subscription", "added_at"]
        constraints = [
            models.CheckConstraint(condition=Q(refunded__lte=models.F("quantity")), name="seat_batch_refund_le_qty"),
        ]

    def __str__(self):
        return f"{self.quantity} seats on {self.added_at:%Y-%m-%d}"

    @property
    def remaining(self) -> int:
        return self.quantity - self.refunded


declare(SeatBatch, not_personal=["subscription", "source", "quantity", "refunded", "added_at", "refundable_until"])


class SubscriptionEvent(TenantModel):
    """Immutable change ledger: Partner Center keeps audit records for 90 days only, we keep ours."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=48)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=300, blank=True)
    actor_label = models.CharField(max_length=100, blank=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    operation = models.ForeignKey(
        ProvisioningOperation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.action} on {self.subscription_id}"


declare(
    SubscriptionEvent,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    not_personal=["subscription", "action", "before", "after", "note", "actor_label", "actor_user", "operation"],
)
