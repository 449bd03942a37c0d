"""Daily usage snapshots and reclaim-at-renewal proposals (the reporting settings are LicensingSettings)."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from core.models import TenantModel
from core.registry import declare

from .directory import TenantSku


class UsageSnapshot(TenantModel):
    """Seats of one SKU at the end of one UTC day. Taken daily; re-taking a day overwrites it."""

    sku = models.ForeignKey(TenantSku, on_delete=models.CASCADE, related_name="snapshots")
    day = models.DateField()
    purchased = models.PositiveIntegerField()
    assigned = models.PositiveIntegerField()
    available = models.IntegerField()
    unit_price_monthly = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)

    class Meta:
        ordering = ["day"]
        constraints = [models.UniqueConstraint(fields=["sku", "day"], name="usage_snapshot_per_day")]
        indexes = [models.Index(fields=["organization", "day"], name="usage_snapshot_org_day_idx")]

    @property
    def utilisation(self) -> Decimal:
        if not self.purchased:
            return Decimal("0")
        return (Decimal(self.assigned) * 100 / Decimal(self.purchased)).quantize(Decimal("0.1"))


declare(
    UsageSnapshot,
    not_personal=["sku", "day", "purchased", "assigned", "available", "unit_price_monthly", "currency"],
)


class ReductionProposal(TenantModel):
    """"Reduce at renewal": seats freed by reclaiming inactive users, waiting for the owner's approval."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Waiting for owner approval"
        APPROVED = "approved", "Approved, scheduled for renewal"
        REJECTED = "rejected", "Rejected"

    sku = models.ForeignKey(TenantSku, on_delete=models.CASCADE, related_name="reduction_proposals")
    subscription = models.ForeignKey(
        "licensing.Subscription", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reduce_by = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def clean(self):
        if self.reduce_by < 1:
            raise ValidationError({"reduce_by": "Reduce by at least one seat."})


declare(
    ReductionProposal,
    not_personal=[
        "sku", "subscription", "reduce_by", "status", "proposed_by", "decided_by", "decided_at",
    ],
)
