"""Stored ``Idempotency-Key`` responses, per caller."""

from django.db import models

from core.fields import EncryptedJSONField
from core.registry import Category, Personal, Retention, Subject, declare

from .base import TenantModel


class IdempotencyRecord(TenantModel):
    """One ``Idempotency-Key`` of one caller: in flight until ``completed_at``, then the stored response.

    Keys belong to the caller (an API key or a signed-in user), not to the whole organisation:
    two integrations that happen to pick the same key must not get each other's responses.
    The unique constraint, not an application check, is what stops two concurrent
    requests with the same key from both running.
    """

    # Encrypted before it moved down from its first app: keep the label its ciphertexts are bound to.
    ciphertext_label = "portal.idempotencyrecord"

    caller = models.CharField(max_length=80)  # "api_key:<id>" or "user:<id>"
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # Responses can echo personal data (an invited person's email), so they are encrypted.
    response_body = EncryptedJSONField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "portal_idempotencyrecord"
        constraints = [
            models.UniqueConstraint(fields=["organization", "caller", "key"], name="one_idempotency_key_per_caller")
        ]

    def __str__(self):
        return f"Idempotency key {self.key[:16]}"


declare(
    IdempotencyRecord,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={"response_body": Personal(Category.TECHNICAL_LOG, Retention.TECHNICAL_LOG)},
    # caller is an id, like AuditEvent.actor_id: it names no one by itself.
    not_personal=["caller", "key", "fingerprint", "status_code", "completed_at", "expires_at"],
)
