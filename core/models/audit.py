"""The audit chain's tables: append-only, HMAC-chained events and the signed head."""

from django.conf import settings
from django.db import models

from core.fields import EncryptedIPAddressField
from core.registry import Category, Personal, Retention, Subject, declare
from core.tenancy import TenantManager, UnscopedManager


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
        settings.TENANT_MODEL,
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
    # Encrypted under the audit key and bound to the sequence (known before the insert, unlike
    # the id); the chain's hash covers the plaintext, as before it was encrypted (core.audit).
    ip_address = EncryptedIPAddressField(null=True, blank=True, key_scope="system:audit", row_field="sequence")
    request_id = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = TenantManager()
    unscoped_objects = UnscopedManager()

    class Meta:
        db_table = "security_auditevent"
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

    class Meta:
        db_table = "security_auditchainhead"

    def __str__(self):
        return f"audit head #{self.sequence}"


declare(AuditChainHead, not_personal=["sequence", "hash", "signature"])
