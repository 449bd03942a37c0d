"""The key ring's table: data keys wrapped by a master key (AES-256 envelope encryption)."""

import uuid

from django.db import models

from core.registry import declare


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
        db_table = "security_datakey"
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
