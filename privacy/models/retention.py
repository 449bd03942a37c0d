"""Legal holds and the record of each retention run."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.fields import EncryptedCharField
from core.models import BaseModel
from core.registry import Category, Personal, Retention, Subject, declare


class LegalHold(BaseModel):
    """Litigation or a regulator's inquiry: nothing of this organisation or person is purged or erased
    while the hold is active (GDPR Art. 17(3)(e))."""

    organization = models.ForeignKey(settings.TENANT_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    # Names the litigation or inquiry, often the person: encrypted under the hold's own key.
    reason = EncryptedCharField(max_length=300, key_scope="self")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(organization__isnull=False) | Q(user__isnull=False), name="privacy_legal_hold_scope"
            )
        ]

    def __str__(self):
        return f"Legal hold ({self.reason[:40]})"


declare(
    LegalHold,
    subject=Subject.PORTAL_USER,
    subject_lookup="user",
    personal={"reason": Personal(Category.IDENTITY, Retention.ACTIVE_PLUS_LEGAL)},
    not_personal=["user", "owner", "released_at"],
)


class RetentionRun(BaseModel):
    """One run of the purge: when, dry or real, and how many rows per data set. Never the data."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    counts = models.JSONField(default=dict)
    held = models.JSONField(default=dict)

    def __str__(self):
        return f"Retention run {self.started_at:%Y-%m-%d %H:%M}{' (dry run)' if self.dry_run else ''}"


declare(RetentionRun, not_personal=["started_at", "finished_at", "dry_run", "counts", "held"])
