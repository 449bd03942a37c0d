"""The provisioning outbox: every Microsoft call is a ProvisioningOperation row.

A service writes the row in its own transaction; a Celery task carries it out
after commit (licensing/provisioning.py). The row keeps the MS-RequestId that is
reused on every retry, so Microsoft sees one logical request however often the
worker runs it.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.fields import EncryptedJSONField, EncryptedTextField
from core.models import TenantModel
from core.registry import Category, Personal, Retention, Subject, declare


class ProvisioningOperation(TenantModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        DEAD = "dead", "Gave up"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.DEAD)

    kind = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    # Payload and result can carry contact details or a new tenant's first admin password.
    payload = EncryptedJSONField(default=dict, blank=True)
    result = EncryptedJSONField(null=True, blank=True)
    # Non-personal progress the handler keeps between attempts (cart id, order id...),
    # so a retry resumes instead of repeating a step.
    checkpoint = models.JSONField(default=dict, blank=True)
    # Timeline shown to the customer: milestone name -> ISO timestamp.
    milestones = models.JSONField(default=dict, blank=True)
    ms_request_id = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    idempotency_key = models.CharField(max_length=128, blank=True, default="")
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    polls = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error_code = models.CharField(max_length=64, blank=True)
    last_error = EncryptedTextField(blank=True, default="")
    failure_reason = models.CharField(max_length=300, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="provisioning_op_idempotent",
            ),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="provisioning_op_sweep")]

    def __str__(self):
        return f"{self.kind} ({self.get_status_display()})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def needs_attention(self) -> bool:
        return self.status in (self.Status.FAILED, self.Status.DEAD)


declare(
    ProvisioningOperation,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={
        "payload": Personal(Category.TENANT, Retention.ACTIVE_PLUS_LEGAL),
        "result": Personal(Category.TENANT, Retention.ACTIVE_PLUS_LEGAL),
        "last_error": Personal(Category.TECHNICAL_LOG, Retention.TECHNICAL_LOG),
    },
    not_personal=[
        "kind",
        "status",
        "checkpoint",
        "milestones",
        "ms_request_id",
        "idempotency_key",
        "target_type",
        "target_id",
        "attempts",
        "polls",
        "max_attempts",
        "next_attempt_at",
        "lease_expires_at",
        "started_at",
        "finished_at",
        "last_error_code",
        "failure_reason",
        "requested_by",
        "actor_label",
    ],
)


class ProvisioningAttempt(TenantModel):
    """One run of an operation by a worker: kept for the customer's timeline and for staff."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        IN_PROGRESS = "in_progress", "Waiting for Microsoft"
        RETRY = "retry", "Failed, will retry"
        FAILED = "failed", "Failed"
        ABANDONED = "abandoned", "Worker lost"

    operation = models.ForeignKey(ProvisioningOperation, on_delete=models.CASCADE, related_name="attempt_set")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = EncryptedTextField(blank=True, default="")
    retry_after_seconds = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["operation", "number"]
        constraints = [
            models.UniqueConstraint(fields=["operation", "number"], name="provisioning_attempt_number_once"),
        ]

    def __str__(self):
        return f"attempt {self.number}: {self.get_outcome_display()}"


declare(
    ProvisioningAttempt,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={"error": Personal(Category.TECHNICAL_LOG, Retention.TECHNICAL_LOG)},
    not_personal=["operation", "number", "outcome", "started_at", "finished_at", "error_code", "retry_after_seconds"],
)
