"""Erasures: a deletion request's plan, its grace period, what was erased and what was kept and why."""

from __future__ import annotations

from django.db import models

from core.models import BaseModel
from core.registry import declare

from .requests import PrivacyRequest


class Erasure(BaseModel):
    """One erasure of one subject, scheduled when a deletion request is approved.

    ``erase_after`` ends the grace period during which the requester can cancel. ``outcome`` lists,
    per data set, what was erased and what was kept with its reason and retention: counts and
    labels only, never the data. A second run finds it done and does nothing.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled (grace period)"
        UNASSIGNING = "unassigning", "Removing licenses in Microsoft 365"
        CANCELLED = "cancelled", "Cancelled by the requester"
        DONE = "done", "Done"

    request = models.OneToOneField(PrivacyRequest, on_delete=models.CASCADE, related_name="erasure")
    # The portal account erased, if any ("" for a person known only from customers' directories).
    subject_id = models.CharField(max_length=64, blank=True)
    # Directory users erased: [{"org": organisation id, "id": DirectoryUser id}], ids only.
    directory_users = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    erase_after = models.DateTimeField(db_index=True)
    performed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.JSONField(default=list, blank=True)

    def __str__(self):
        return f"Erasure for {self.request_id} ({self.get_status_display()})"


declare(
    Erasure,
    not_personal=["request", "subject_id", "directory_users", "status", "erase_after", "performed_at", "outcome"],
)


class RecipientNotice(BaseModel):
    """GDPR Art. 19: a recipient named in the disclosure log must be told of an erasure or correction."""

    class Status(models.TextChoices):
        PENDING = "pending", "To be sent"
        SENT = "sent", "Sent"

    request = models.ForeignKey(PrivacyRequest, on_delete=models.CASCADE, related_name="recipient_notices")
    recipient = models.CharField(max_length=16)
    categories = models.JSONField(default=list)
    last_disclosed_at = models.DateTimeField()
    # What the recipient is told of: "erasure", "correction", "restriction" (a later one re-opens the notice).
    actions = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The recipient's privacy contact it went to (an organisation's address, from settings), and how often.
    sent_to = models.CharField(max_length=254, blank=True)
    sends = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "recipient"], name="privacy_recipient_notice_once"),
        ]

    def __str__(self):
        return f"Notice to {self.recipient} about {self.request_id}"


declare(
    RecipientNotice,
    not_personal=["request", "recipient", "categories", "last_disclosed_at", "actions", "status", "sent_at",
                  "sent_to", "sends"],
)
