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
