"""Corrections: what a field said, what it says now, who changed it and why."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.fields import EncryptedTextField
from core.models import TenantModel
from core.registry import Category, Personal, Retention, Subject, declare

from .requests import PrivacyRequest


class Correction(TenantModel):
    """One corrected field of one row (GDPR Art. 16, CCPA §7023). The old and new values are
    encrypted under the organisation's key; the field is locked so syncs cannot undo it."""

    request = models.ForeignKey(PrivacyRequest, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="corrections")
    model_label = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    field_name = models.CharField(max_length=64)
    old_value = EncryptedTextField(blank=True)
    new_value = EncryptedTextField(blank=True)
    reason = EncryptedTextField(blank=True)
    corrected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")

    def __str__(self):
        return f"Correction of {self.model_label}.{self.field_name} ({self.object_id})"


declare(
    Correction,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={
        "old_value": Personal(Category.IDENTITY, Retention.PRIVACY_RECORD),
        "new_value": Personal(Category.IDENTITY, Retention.PRIVACY_RECORD),
        "reason": Personal(Category.IDENTITY, Retention.PRIVACY_RECORD),
    },
    not_personal=["request", "model_label", "object_id", "field_name", "corrected_by"],
)
