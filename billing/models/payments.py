"""Payment methods (a processor's token with brand, last 4 and expiry, never a card number) and payments."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from core.fields import EncryptedCharField
from core.models import TenantModel
from core.registry import Category, Personal, Retention, Subject, declare

from .invoices import Invoice


class PaymentMethod(TenantModel):
    gateway = models.CharField(max_length=32)
    token = EncryptedCharField(max_length=512)
    brand = models.CharField(max_length=16)
    last4 = EncryptedCharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(12)])
    exp_year = models.PositiveSmallIntegerField()
    is_default = models.BooleanField(default=False)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+")
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-is_default", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["organization"], condition=Q(is_default=True, removed_at=None),
                                               name="one_default_payment_method")]

    def __str__(self):
        return f"{self.brand.title()} ending {self.last4}"


declare(
    PaymentMethod,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={
        "token": Personal(Category.PAYMENT_TOKEN, Retention.BILLING_RECORD),
        "last4": Personal(Category.PAYMENT_TOKEN, Retention.BILLING_RECORD),
        "exp_month": Personal(Category.PAYMENT_TOKEN, Retention.BILLING_RECORD),
        "exp_year": Personal(Category.PAYMENT_TOKEN, Retention.BILLING_RECORD),
    },
    not_personal=["gateway", "brand", "is_default", "added_by", "removed_at"],
)


class Payment(TenantModel):
    class Method(models.TextChoices):
        CARD = "card", "Card"
        BANK_TRANSFER = "bank_transfer", "Bank transfer"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="payments")
    method = models.CharField(max_length=16, choices=Method.choices)
    payment_method = models.ForeignKey(PaymentMethod, on_delete=models.SET_NULL, null=True, blank=True,
                                       related_name="payments")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=100, help_text="The processor's charge id or the bank reference.")
    received_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    idempotency_key = models.CharField(max_length=128)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "idempotency_key"], name="payment_idempotent"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_positive"),
        ]

    def __str__(self):
        return f"{self.currency} {self.amount} for {self.invoice_id}"


declare(Payment, not_personal=["invoice", "method", "payment_method", "amount", "currency", "reference",
                               "received_at", "recorded_by", "idempotency_key"])


class Refund(TenantModel):
    """Money given back from a payment: through the gateway for a card, by the bank for a transfer.
    Refunds of one payment never add up to more than it (checked under the invoice's row lock)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="refunds")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=100, help_text="The processor's refund id or the bank reference.")
    reason = models.CharField(max_length=300)
    refunded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    idempotency_key = models.CharField(max_length=128)

    class Meta:
        ordering = ["-refunded_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "idempotency_key"], name="refund_idempotent"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_positive"),
        ]

    def __str__(self):
        return f"Refund of {self.currency} {self.amount} from {self.payment_id}"


declare(Refund, not_personal=["invoice", "payment", "amount", "currency", "reference", "reason", "refunded_at",
                              "recorded_by", "idempotency_key"])
