"""Login monitoring and Azure fraud: what the detectors found, what was done, and the policies.

Decision 022 explains the detectors, the responses and the fraud policy.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import SIGN_IN_KEY_SCOPE
from core.fields import EncryptedJSONField
from core.models.base import BaseModel, TenantModel
from core.registry import Category, Personal, Retention, Subject, declare


class LoginSignal(BaseModel):
    """One finding of login monitoring about one sign-in attempt, and the response it got.

    Not a tenant row: a person signs in before any organisation is chosen, like ``SignInEvent``.
    """

    class Kind(models.TextChoices):
        NEW_DEVICE = "new_device", "New device"
        NEW_NETWORK = "new_network", "New network"
        IMPOSSIBLE_TRAVEL = "impossible_travel", "Impossible travel"
        PASSWORD_SPRAY = "password_spray", "Password spraying"
        MFA_FAILURES = "mfa_failures", "Repeated second-factor failures"
        OUTSIDE_ALLOW_LIST = "outside_allow_list", "Outside the organisation's allowed networks"

    class Risk(models.IntegerChoices):
        LOW = 1, "Low"
        MEDIUM = 2, "Medium"
        HIGH = 3, "High"

    class Response(models.TextChoices):
        NOTIFY = "notify", "User asked \"was this you?\""
        STEP_UP = "step_up", "Fresh second factor required"
        BLOCK = "block", "Blocked, security alerted"

    occurred_at = models.DateTimeField(db_index=True)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="login_signals")
    sign_in_event = models.ForeignKey("accounts.SignInEvent", on_delete=models.CASCADE, related_name="signals")
    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    risk = models.PositiveSmallIntegerField(choices=Risk.choices, db_index=True)
    response = models.CharField(max_length=16, choices=Response.choices, db_index=True)
    # Encrypted like the attempt it judges (its countries and distances say where the person was).
    detail = EncryptedJSONField(default=dict, blank=True, key_scope=SIGN_IN_KEY_SCOPE, row_field="occurred_at")

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["user", "-occurred_at"])]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.get_risk_display()}) at {self.occurred_at:%Y-%m-%d %H:%M}"


declare(
    LoginSignal,
    subject=Subject.PORTAL_USER,
    subject_lookup="user",
    personal={
        "occurred_at": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        "kind": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        "risk": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        "response": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        # Distance, hours, countries and counts: never an address.
        "detail": Personal(Category.SECURITY, Retention.SECURITY_LOG),
    },
    not_personal=["user", "sign_in_event"],
)


class SignInPolicy(TenantModel):
    """An organisation's optional sign-in allow-list: its members may sign in only from these networks."""

    allowed_networks = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="one_sign_in_policy_per_org")]
        verbose_name_plural = "sign-in policies"

    def __str__(self):
        return f"sign-in policy ({len(self.allowed_networks)} networks)"


declare(SignInPolicy, not_personal=["allowed_networks"])


class AzureUsageDay(TenantModel):
    """One Azure subscription's usage on one day, summed from the partner usage export: the history the
    anomaly detection compares each new day with."""

    azure_subscription_id = models.CharField(max_length=64)
    day = models.DateField()
    spend = models.DecimalField(max_digits=14, decimal_places=4)
    currency = models.CharField(max_length=3, default="USD")
    regions = models.JSONField(default=list, blank=True)
    vm_families = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "azure_subscription_id", "day"],
                                               name="one_azure_usage_day")]
        ordering = ["day"]


declare(AzureUsageDay, not_personal=["azure_subscription_id", "day", "spend", "currency", "regions", "vm_families"])


class FraudCase(TenantModel):
    """One Azure fraud signal about one customer subscription, from Partner Center or our own detection."""

    class Source(models.TextChoices):
        PARTNER_CENTER = "partner_center", "Partner Center fraud event"
        USAGE_ANOMALY = "usage_anomaly", "Our usage anomaly detection"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED_FRAUD = "resolved_fraud", "Resolved: fraud"
        RESOLVED_IGNORE = "resolved_ignore", "Resolved: not fraud"

    class Action(models.TextChoices):
        ALERT = "alert", "Alert only"
        BLOCK_PROVISIONING = "block_provisioning", "New provisioning blocked"
        SUSPEND = "suspend", "Azure subscription suspended"

    source = models.CharField(max_length=16, choices=Source.choices)
    signal = models.CharField(max_length=64)  # Microsoft's eventType, or ours (spend_spike, new_region, ...)
    dedupe_key = models.CharField(max_length=200)
    azure_subscription_id = models.CharField(max_length=64, db_index=True)
    subscription = models.ForeignKey("licensing.Subscription", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    score = models.PositiveSmallIntegerField()
    evidence = models.JSONField(default=dict, blank=True)
    ms_event_ids = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    action = models.CharField(max_length=24, choices=Action.choices, default=Action.ALERT)
    blocks_provisioning = models.BooleanField(default=False)
    suspension_requested_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    resolution_note = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "dedupe_key"], name="one_fraud_case_per_signal")]
        ordering = ["-created_at"]

    def __str__(self):
        return f"fraud case {self.signal} on {self.azure_subscription_id[:8]} ({self.get_status_display()})"


declare(
    FraudCase,
    not_personal=[
        "source", "signal", "dedupe_key", "azure_subscription_id", "subscription", "score", "evidence",
        "ms_event_ids", "status", "action", "blocks_provisioning", "suspension_requested_at", "resolved_at",
        "resolved_by", "resolution_note",
    ],
)
