"""An organisation's licensing settings: one row per organisation, for buying and for usage reporting."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from core.models import TenantModel
from core.registry import declare

DEFAULT_INACTIVE_DAYS = 30
DEFAULT_REMINDER_OFFSETS = [30, 7, 1]


def default_reminder_offsets() -> list[int]:
    return list(DEFAULT_REMINDER_OFFSETS)


class LicensingSettings(TenantModel):
    """Owner approval of large orders, when a user counts as inactive, and when reminders go out."""

    # Orders whose total exceeds this need an owner's approval; empty means never. The threshold is
    # an amount in ``currency``: an order in another currency cannot be compared with it, so it needs
    # approval too (see services.purchases.order_quote).
    approval_threshold = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(
        max_length=3, default="USD",
        validators=[RegexValidator(r"^[A-Z]{3}$", "Use a three-letter currency code such as USD.")],
    )
    inactive_days = models.PositiveSmallIntegerField(default=DEFAULT_INACTIVE_DAYS)
    reminder_offsets = models.JSONField(default=default_reminder_offsets)
    email_notifications = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "licensing settings"
        constraints = [models.UniqueConstraint(fields=["organization"], name="one_licensing_settings_per_org")]

    def __str__(self):
        return f"Licensing settings of {self.organization_id}"

    def clean(self):
        if not 1 <= self.inactive_days <= 365:
            raise ValidationError({"inactive_days": "Choose between 1 and 365 days."})
        offsets = self.reminder_offsets
        if not isinstance(offsets, list) or not offsets or len(offsets) > 6:
            raise ValidationError({"reminder_offsets": "Choose between one and six reminder days."})
        if any(not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 180 for d in offsets):
            raise ValidationError({"reminder_offsets": "Each reminder is a whole number of days from 0 to 180."})
        self.reminder_offsets = sorted(set(offsets), reverse=True)


declare(
    LicensingSettings,
    not_personal=["approval_threshold", "currency", "inactive_days", "reminder_offsets", "email_notifications"],
)
