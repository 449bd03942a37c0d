"""Privacy requests (DSARs): what was asked, by whom, through which channel, and every step since.

The requester's identifiers are encrypted under the request's own data key (``key_scope="self"``),
so the record can be minimised at the end of its retention (24 months, CCPA §7101) by destroying
one key, without touching the account it may concern.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.fields import BlindIndexField, EncryptedCharField, EncryptedTextField
from core.models import BaseModel
from core.registry import Category, Personal, Retention, Subject, declare

REQUESTER_EMAIL_INDEX = "privacy-requester-email"
# The fourth wrong verification code locks the request: the officer must verify it another way.
MAX_CODE_FAILURES = 4


class PrivacyRequest(BaseModel):
    class Kind(models.TextChoices):
        ACCESS = "access", "Access (right to know)"
        PORTABILITY = "portability", "Portability (machine-readable copy)"
        CORRECTION = "correction", "Correction"
        DELETION = "deletion", "Deletion"
        OPT_OUT = "opt_out", "Opt-out of sale or sharing"

    class Channel(models.TextChoices):
        PORTAL = "portal", "Signed-in portal"
        PUBLIC_FORM = "public_form", "Public form"
        STAFF = "staff", "Entered by staff (email or post)"

    class Status(models.TextChoices):
        UNVERIFIED = "unverified", "Awaiting verification"
        OPEN = "open", "Verified, awaiting decision"
        APPROVED = "approved", "Approved, in progress"
        DENIED = "denied", "Denied"
        COMPLETED = "completed", "Completed"

    class Region(models.TextChoices):
        EU_UK = "eu_uk", "European Union, EEA or United Kingdom"
        US_CA = "us_ca", "California"
        OTHER = "other", "Elsewhere, or I'd rather not say"

    class Verification(models.TextChoices):
        MFA_SESSION = "mfa_session", "Signed-in session with recent second factor"
        EMAIL_CODE = "email_code", "Code sent to the email address"
        STAFF = "staff", "Checked by the privacy officer"

    OPEN_STATUSES = (Status.UNVERIFIED, Status.OPEN, Status.APPROVED)

    reference = models.CharField(max_length=16, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNVERIFIED)
    region = models.CharField(max_length=8, choices=Region.choices)
    regimes = models.JSONField(default=list)

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    organization = models.ForeignKey(settings.TENANT_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    requester_email = EncryptedCharField(max_length=254, key_scope="self")
    requester_email_index = BlindIndexField(source="requester_email", purpose=REQUESTER_EMAIL_INDEX)
    requester_name = EncryptedCharField(max_length=150, blank=True, key_scope="self")
    details = EncryptedTextField(blank=True, key_scope="self")
    on_behalf = models.BooleanField(default=False)
    agent_name = EncryptedCharField(max_length=150, blank=True, key_scope="self")
    # When an agent asks (on_behalf), the requester is the agent: their address receives the code and the
    # answers. The person whose data is searched, exported or erased is found under this address instead.
    subject_email = EncryptedCharField(max_length=254, blank=True, null=True, key_scope="self")  # null: older rows
    authorization_received_at = models.DateTimeField(null=True, blank=True)

    received_at = models.DateTimeField(default=timezone.now)
    ack_due = models.DateField(null=True, blank=True)
    response_due = models.DateField()
    extended_due = models.DateField()
    extend_by = models.DateField()
    extendable = models.BooleanField(default=True)
    due_date = models.DateField(db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    verified_at = models.DateTimeField(null=True, blank=True)
    verification = models.CharField(max_length=16, choices=Verification.choices, blank=True)
    code_hash = models.CharField(max_length=64, blank=True)
    code_expires_at = models.DateTimeField(null=True, blank=True)
    code_failures = models.PositiveSmallIntegerField(default=0)

    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    extended_at = models.DateTimeField(null=True, blank=True)
    extension_reason = EncryptedTextField(blank=True, key_scope="self")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = EncryptedTextField(blank=True, key_scope="self")
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_date", "received_at"]
        indexes = [models.Index(fields=["status", "due_date"], name="privacy_request_queue_idx")]
        permissions = [("work_privacyrequest", "Can work privacy requests (privacy officer)")]

    def __str__(self):
        return f"{self.reference} ({self.get_kind_display()})"

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def verification_locked(self) -> bool:
        return self.code_failures >= MAX_CODE_FAILURES

    @property
    def data_subject_email(self) -> str:
        """The address the subject's data is found under: the requester's own, or for an agent's request the
        person's they act for. An agent's request without one finds nobody (fails closed), never the agent."""
        return (self.subject_email or "") if self.on_behalf else self.requester_email


declare(
    PrivacyRequest,
    subject=Subject.REQUESTER,
    subject_lookup="pk",
    personal={
        "requester_email": Personal(Category.CONTACT, Retention.PRIVACY_RECORD),
        "requester_email_index": Personal(Category.CONTACT, Retention.PRIVACY_RECORD),
        "requester_name": Personal(Category.IDENTITY, Retention.PRIVACY_RECORD),
        "details": Personal(Category.IDENTITY, Retention.PRIVACY_RECORD),
        "agent_name": Personal(Category.IDENTITY, Retention.PRIVACY_RECORD),
        "subject_email": Personal(Category.CONTACT, Retention.PRIVACY_RECORD),
        "extension_reason": Personal(Category.IDENTITY, Retention.PRIVACY_RECORD),
        "decision_reason": Personal(Category.IDENTITY, Retention.PRIVACY_RECORD),
        "code_hash": Personal(Category.SECURITY, Retention.PRIVACY_RECORD, secret=True),
    },
    not_personal=[
        "reference", "kind", "channel", "status", "region", "regimes", "requester", "on_behalf",
        "authorization_received_at", "received_at", "ack_due", "response_due", "extended_due", "extend_by",
        "extendable", "due_date", "acknowledged_at", "verified_at", "verification", "code_expires_at",
        "code_failures", "assigned_to", "extended_at", "decided_at", "completed_at",
    ],
)


class PrivacyRequestEvent(BaseModel):
    """One step in a request's history: who did what, when, with an optional note (encrypted)."""

    class Action(models.TextChoices):
        RECEIVED = "received", "Received"
        CODE_SENT = "code_sent", "Verification code sent"
        CODE_FAILED = "code_failed", "Wrong or expired code"
        VERIFIED = "verified", "Identity verified"
        ACKNOWLEDGED = "acknowledged", "Acknowledgement sent"
        ASSIGNED = "assigned", "Assigned"
        NOTE = "note", "Note"
        AUTHORIZATION = "authorization", "Authorisation document received"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"
        EXTENDED = "extended", "Deadline extended"
        COMPLETED = "completed", "Completed"
        EMAILED = "emailed", "Status email sent"

    request = models.ForeignKey(PrivacyRequest, on_delete=models.CASCADE, related_name="events")
    occurred_at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=32)
    note = EncryptedTextField(blank=True, key_scope="field:request_id")

    class Meta:
        ordering = ["occurred_at", "created_at"]

    def __str__(self):
        return f"{self.request_id}: {self.get_action_display()}"


declare(
    PrivacyRequestEvent,
    subject=Subject.REQUESTER,
    subject_lookup="request",
    personal={"note": Personal(Category.IDENTITY, Retention.PRIVACY_RECORD)},
    not_personal=["request", "occurred_at", "action", "actor", "actor_label"],
)
