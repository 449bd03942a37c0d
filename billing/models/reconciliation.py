"""Reconciliation against Microsoft: imported line items, and what matching them with our invoices found.

Staff-only rows spanning customers (Microsoft's files do), so they are not tenant rows; each row
names the organisation it was matched to, when it was.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.models import BaseModel
from core.registry import declare


class ReconciliationRun(BaseModel):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    source = models.CharField(max_length=64, help_text='"unbilled" or a Microsoft invoice id.')
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    items = models.PositiveIntegerField(default=0)
    # {"leakage": "12.00", "over_billing": ..., "quantity_mismatch": n, "price_mismatch": n, ...}
    summary = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"Reconciliation of {self.source} at {self.started_at:%Y-%m-%d %H:%M}"


declare(ReconciliationRun, not_personal=["source", "status", "started_at", "finished_at", "items", "summary",
                                         "error"])


class MicrosoftLineItem(BaseModel):
    """One of Microsoft's (license-based, one-time) reconciliation line items, as imported."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="line_items")
    organization = models.ForeignKey(settings.TENANT_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    reference_id = models.CharField(max_length=64)
    ms_customer_id = models.CharField(max_length=64, blank=True)
    ms_subscription_id = models.CharField(max_length=64, db_index=True)
    invoice_number = models.CharField(max_length=32, blank=True)
    charge_type = models.CharField(max_length=32)
    product_name = models.CharField(max_length=200, blank=True)
    charge_start = models.DateTimeField()
    charge_end = models.DateTimeField()
    quantity = models.IntegerField()
    unit_price = models.DecimalField(max_digits=14, decimal_places=4)
    subtotal = models.DecimalField(max_digits=16, decimal_places=4)
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "reference_id"], name="line_item_once_per_run")]

    def __str__(self):
        return f"{self.charge_type} {self.ms_subscription_id} {self.subtotal}"


declare(MicrosoftLineItem, not_personal=[
    "run", "organization", "reference_id", "ms_customer_id", "ms_subscription_id", "invoice_number",
    "charge_type", "product_name", "charge_start", "charge_end", "quantity", "unit_price", "subtotal", "currency",
])


class ReconciliationFinding(BaseModel):
    class Kind(models.TextChoices):
        LEAKAGE = "leakage", "Leakage: Microsoft charged us, we did not bill"
        OVER_BILLING = "over_billing", "Over-billing: we billed what Microsoft did not charge"
        QUANTITY = "quantity_mismatch", "Quantity mismatch"
        PRICE = "price_mismatch", "Price below Microsoft's cost"
        UNKNOWN = "unknown_subscription", "Subscription we do not know"

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="findings")
    organization = models.ForeignKey(settings.TENANT_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    kind = models.CharField(max_length=24, choices=Kind.choices, db_index=True)
    ms_subscription_id = models.CharField(max_length=64)
    charge_day = models.DateField()
    ms_quantity = models.IntegerField(default=0)
    our_quantity = models.IntegerField(default=0)
    ms_amount = models.DecimalField(max_digits=16, decimal_places=4, default=0)
    our_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    # What this finding costs the reseller if nobody acts (leakage and selling below cost).
    at_risk = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at_risk"]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.ms_subscription_id} {self.charge_day}"


declare(ReconciliationFinding, not_personal=[
    "run", "organization", "kind", "ms_subscription_id", "charge_day", "ms_quantity", "our_quantity", "ms_amount",
    "our_amount", "at_risk", "note",
])
