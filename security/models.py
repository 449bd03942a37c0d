import uuid

from django.db import models

from portal.tenancy import TenantManager, UnscopedManager
from privacy.registry import Category, Personal, Retention, Subject, declare


class DataKey(models.Model):
    """A data key wrapped by a master key. One active key per scope."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired (decrypt only)"
        DESTROYED = "destroyed", "Destroyed (crypto-shredded)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope_kind = models.CharField(max_length=16)
    scope_id = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    master_kid = models.CharField(max_length=64)
    wrapped_key = models.BinaryField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope_kind", "scope_id"],
                condition=models.Q(status="active"),
                name="one_active_data_key_per_scope",
            )
        ]
        indexes = [models.Index(fields=["scope_kind", "scope_id"])]

    def __str__(self):
        return f"{self.scope_kind}:{self.scope_id} ({self.status})"


declare(DataKey, not_personal=["scope_kind", "scope_id", "status", "master_kid", "wrapped_key", "retired_at"])


class AuditEvent(models.Model):
    """Append-only, HMAC-chained record of every state change and every staff read."""

    class ActorType(models.TextChoices):
        USER = "user", "User"
        STAFF = "staff", "Staff"
        API_KEY = "api_key", "API key"
        SYSTEM = "system", "System"

    id = models.BigAutoField(primary_key=True)
    sequence = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = TenantManager()
    unscoped_objects = UnscopedManager()

    class Meta:
        base_manager_name = "unscoped_objects"
        indexes = [models.Index(fields=["organization", "-occurred_at"])]
        ordering = ["-sequence"]

    def __str__(self):
        return f"#{self.sequence} {self.action}"


declare(
    AuditEvent,
    subject=Subject.PORTAL_USER,
    subject_lookup="actor_id",
    personal={
        "ip_address": Personal(Category.TECHNICAL_LOG, Retention.ACTIVE_PLUS_LEGAL),
    },
    not_personal=[
        "sequence",
        "occurred_at",
        "actor_type",
        "actor_id",
        "action",
        "target_type",
        "target_id",
        "request_id",
        "metadata",
        "previous_hash",
        "hash",
    ],
)


class AuditChainHead(models.Model):
    """The chain's latest sequence and hash, itself authenticated, so truncation is detectable."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)
    signature = models.CharField(max_length=64, blank=True)

    def __str__(self):
        return f"audit head #{self.sequence}"


declare(AuditChainHead, not_personal=["sequence", "hash", "signature"])


class SignInEvent(models.Model):
    """Every sign-in attempt, successful or not, for the user's activity page and login monitoring.

    The attempted email is kept only as a blind index (the same purpose as the user's
    email index), so attempts against unknown addresses can be grouped without storing them.
    """

    class Factor(models.TextChoices):
        PASSWORD = "password", "Password"
        TOTP = "totp", "Authenticator app"
        RECOVERY = "recovery", "Recovery code"
        WEBAUTHN = "webauthn", "Passkey"

    class Reason(models.TextChoices):
        NONE = "", "None"
        BAD_CREDENTIALS = "bad_credentials", "Wrong email or password"
        LOCKED_OUT = "locked_out", "Locked out after too many failures"
        INACTIVE = "inactive", "Account disabled"
        BAD_CODE = "bad_code", "Wrong or expired code"
        REPLAYED_CODE = "replayed_code", "Code already used"
        THROTTLED = "throttled", "Too many wrong codes"

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, null=True, blank=True, related_name="sign_in_events"
    )
    email_index = models.CharField(max_length=64, blank=True, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    device_id = models.CharField(max_length=64, blank=True, db_index=True)
    succeeded = models.BooleanField()
    factor = models.CharField(max_length=16, choices=Factor.choices)
    failure_reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["user", "-occurred_at"])]

    def __str__(self):
        outcome = "ok" if self.succeeded else self.failure_reason or "failed"
        return f"sign-in {self.factor} {outcome} at {self.occurred_at:%Y-%m-%d %H:%M}"


declare(
    SignInEvent,
    subject=Subject.PORTAL_USER,
    subject_lookup="user",
    personal={
        "occurred_at": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        "email_index": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        "ip_address": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "user_agent": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "device_id": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "succeeded": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        "factor": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        "failure_reason": Personal(Category.SECURITY, Retention.SECURITY_LOG),
    },
    not_personal=["user"],
)
