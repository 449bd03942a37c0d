"""Opt-outs of the sale and sharing of personal information, and how each was made."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.fields import BlindIndexField, EncryptedCharField
from core.models import BaseModel
from core.registry import Category, Personal, Retention, Subject, declare


class OptOutMethod(models.TextChoices):
    GPC = "gpc_header", "Global Privacy Control signal"
    FORM = "form", "Privacy choices form"
    API = "api", "API"
    STAFF = "staff", "Entered by staff"
    REQUEST = "request", "Privacy request"


class OptOut(BaseModel):
    """A known person's (``user``) or organisation's opt-out: one row each, never undone by the
    absence of a signal (CCPA §7025(c)(5)). The row is the evidence: how and when it was made."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    organization = models.ForeignKey(settings.TENANT_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="+")
    method = models.CharField(max_length=16, choices=OptOutMethod.choices)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, organization__isnull=True)
                | Q(user__isnull=True, organization__isnull=False),
                name="privacy_optout_one_holder",
            ),
            models.UniqueConstraint(
                fields=["user"], condition=Q(user__isnull=False), name="privacy_optout_once_per_user"
            ),
            models.UniqueConstraint(
                fields=["organization"], condition=Q(organization__isnull=False), name="privacy_optout_once_per_org"
            ),
        ]

    def __str__(self):
        holder = f"user {self.user_id}" if self.user_id else f"organisation {self.organization_id}"
        return f"Opt-out of {holder} ({self.get_method_display()})"


declare(OptOut, subject=Subject.PORTAL_USER, subject_lookup="user", not_personal=["user", "method", "recorded_at"])


class BrowserOptOut(BaseModel):
    """The evidence of an anonymous browser's opt-out. The browser keeps the opt-out itself in a
    signed cookie holding ``browser_id``; this row records when and how it was first made.

    The id is encrypted under one key for all browsers (a data key per anonymous browser would be
    a key per visitor) and found, when needed, through its unique blind index."""

    browser_id = EncryptedCharField(max_length=32, key_scope="system:browser-opt-out")
    browser_index = BlindIndexField(source="browser_id", purpose="browser-opt-out", unique=True)
    method = models.CharField(max_length=16, choices=OptOutMethod.choices)
    recorded_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"Browser opt-out {self.browser_id[:6]}… ({self.get_method_display()})"


declare(
    BrowserOptOut,
    subject=Subject.VISITOR,
    subject_lookup="browser_index",
    personal={
        "browser_id": Personal(Category.TECHNICAL_LOG, Retention.PRIVACY_RECORD),
        "browser_index": Personal(Category.TECHNICAL_LOG, Retention.PRIVACY_RECORD),
    },
    not_personal=["method", "recorded_at"],
)
