"""Authorisation documents: the signed proof that an agent may act for the person a request is about."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.fields import EncryptedCharField
from core.models import BaseModel
from core.registry import Category, Personal, Retention, Subject, declare

from .requests import PrivacyRequest


class AuthorizationDocument(BaseModel):
    """One uploaded authorisation. The file itself is encrypted at rest under the request's own key (the
    same as its export), in ``PRIVACY_EXPORT_DIR/authorizations/<id>.bin``; this row holds its metadata."""

    class Source(models.TextChoices):
        OFFICER = "officer", "Filed by the officer"
        AGENT_FORM = "agent_form", "Uploaded by the agent with the public request form"

    request = models.ForeignKey(PrivacyRequest, on_delete=models.CASCADE, related_name="authorization_documents")
    # As uploaded: file names often carry the person's name.
    file_name = EncryptedCharField(max_length=255, key_scope="field:request_id")
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.OFFICER)

    class Meta:
        ordering = ["created_at"]

    def __str__(self):
        return f"Authorisation for {self.request_id} ({self.content_type}, {self.size} bytes)"


declare(
    AuthorizationDocument,
    subject=Subject.REQUESTER,
    subject_lookup="request",
    personal={"file_name": Personal(Category.IDENTITY, Retention.PRIVACY_RECORD)},
    not_personal=["request", "content_type", "size", "sha256", "uploaded_by", "source"],
)
