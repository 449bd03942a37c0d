"""License assignments and bulk jobs.

A seat is held by an assignment in PENDING, ASSIGNED or REMOVING. The assignment service
counts those rows while holding the SKU's seat-pool row lock, so the count can never pass
the purchased quantity however many requests race.
"""

from django.conf import settings
from django.db import models

from core.fields import EncryptedCharField
from core.models import TenantModel
from core.registry import Category, Personal, Retention, Subject, declare

from .directory import DirectoryUser, TenantSku


class LicenseAssignment(TenantModel):
    class State(models.TextChoices):
        PENDING = "pending", "Assigning"
        ASSIGNED = "assigned", "Assigned"
        REMOVING = "removing", "Removing"
        FAILED = "failed", "Failed"
        REMOVED = "removed", "Removed"
        # Being moved to another user (licensing.services.reassign): the seat already counts as the
        # joiner's, so it is not seat-holding; the license leaves this user when Microsoft confirms.
        HANDING_OVER = "handover", "Handing over"

    class Source(models.TextChoices):
        PORTAL = "portal", "Assigned in the portal"
        TENANT = "tenant", "Found in the tenant"

    SEAT_HOLDING = (State.PENDING, State.ASSIGNED, State.REMOVING)

    user = models.ForeignKey(DirectoryUser, on_delete=models.CASCADE, related_name="assignments")
    sku = models.ForeignKey(TenantSku, on_delete=models.CASCADE, related_name="assignments")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PORTAL)
    disabled_plans = models.JSONField(default=list, blank=True)
    bulk_job = models.ForeignKey(
        "licensing.BulkJob", on_delete=models.SET_NULL, null=True, blank=True, related_name="assignments"
    )
    # The outbox operation currently carrying this assignment's Graph call.
    operation = models.ForeignKey(
        "licensing.ProvisioningOperation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    fix_hint = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "sku"], name="one_assignment_per_user_sku")]
        indexes = [
            models.Index(fields=["organization", "sku", "state"], name="assignment_sku_state_idx"),
            # A page of users' licenses (attach_assignments): without it SQLite walks the organisation's rows.
            models.Index(fields=["organization", "user", "state"], name="assignment_user_state_idx"),
            models.Index(fields=["bulk_job", "state"], name="assignment_bulk_state_idx"),
        ]

    def __str__(self):
        return f"{self.sku} → {self.user_id} ({self.get_state_display()})"

    @property
    def holds_seat(self) -> bool:
        return self.state in self.SEAT_HOLDING


declare(
    LicenseAssignment,
    subject=Subject.DIRECTORY_USER,
    subject_lookup="user",
    personal={
        "user": Personal(Category.TENANT, Retention.TENANT_LINK),
        "assigned_at": Personal(Category.TENANT, Retention.TENANT_LINK),
        "removed_at": Personal(Category.TENANT, Retention.TENANT_LINK),
    },
    not_personal=[
        "sku", "state", "source", "disabled_plans", "bulk_job", "operation", "requested_by",
        "error_code", "error_message", "fix_hint",
    ],
)


class AssignmentTally(TenantModel):
    """How many of a seat pool's assignments are in each state, kept by the database.

    Triggers on the assignments table (migration 0013, docs/decisions/038-assignment-tallies.md) add and
    subtract in the writing statement's own transaction, so every writer keeps it: the services, bulk
    ``update()``s, ``bulk_create``, cascades and raw SQL alike. Pages read it instead of counting every
    assignment of the organisation. ``licensing.selectors.tallies.tally_drift`` recounts; the
    ``check_assignment_tallies`` command reports and repairs any drift.

    A state added to ``LicenseAssignment.State`` needs its column here and in the triggers (a new migration),
    or its rows are not counted; ``licensing/tests/test_assignment_tallies.py`` fails until both exist.
    """

    sku = models.OneToOneField(TenantSku, on_delete=models.CASCADE, related_name="tally")
    pending = models.IntegerField(default=0)
    assigned = models.IntegerField(default=0)
    removing = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    removed = models.IntegerField(default=0)
    handover = models.IntegerField(default=0)

    # Column of each state (the state's value is the column name).
    STATES = tuple(LicenseAssignment.State.values)

    def __str__(self):
        return f"{self.sku_id}: {self.held} held"

    @property
    def held(self) -> int:
        """Seats held (pending, assigned, removing): the left-hand side of the seat invariant."""
        return self.pending + self.assigned + self.removing

    def counts(self) -> dict[str, int]:
        return {state: getattr(self, state) for state in self.STATES}


declare(AssignmentTally, not_personal=["sku", *AssignmentTally.STATES])


class BulkJob(TenantModel):
    """A previewed (dry run) and then confirmed bulk assign or unassign."""

    class Action(models.TextChoices):
        ASSIGN = "assign", "Assign"
        UNASSIGN = "unassign", "Unassign"

    class Source(models.TextChoices):
        CSV = "csv", "CSV upload"
        SELECTION = "selection", "Filtered selection"
        RECLAIM = "reclaim", "Reclaim inactive users"

    class Status(models.TextChoices):
        PREVIEW = "preview", "Preview"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
        CANCELLED = "cancelled", "Cancelled"

    action = models.CharField(max_length=10, choices=Action.choices)
    source = models.CharField(max_length=10, choices=Source.choices)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PREVIEW, db_index=True)
    sku = models.ForeignKey(TenantSku, on_delete=models.CASCADE, related_name="bulk_jobs")
    disabled_plans = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    total_rows = models.PositiveIntegerField(default=0)
    change_rows = models.PositiveIntegerField(default=0)
    unchanged_rows = models.PositiveIntegerField(default=0)
    invalid_rows = models.PositiveIntegerField(default=0)
    seats_needed = models.PositiveIntegerField(default=0)
    seats_available = models.IntegerField(default=0)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_action_display()} {self.sku} ({self.change_rows} users)"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.COMPLETED_WITH_ERRORS, self.Status.CANCELLED)

    @property
    def seats_short(self) -> int:
        if self.action != self.Action.ASSIGN:
            return 0
        return max(0, self.seats_needed - self.seats_available)


declare(
    BulkJob,
    not_personal=[
        "action", "source", "status", "sku", "disabled_plans", "created_by", "total_rows", "change_rows",
        "unchanged_rows", "invalid_rows", "seats_needed", "seats_available", "confirmed_at", "finished_at",
        "succeeded", "failed",
    ],
)


class BulkJobRow(TenantModel):
    """One input row of a bulk job and what the dry run decided for it."""

    class Outcome(models.TextChoices):
        CHANGE = "change", "Will change"
        UNCHANGED = "unchanged", "Already as requested"
        INVALID = "invalid", "Invalid"

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="rows")
    row_number = models.PositiveIntegerField()
    # What the row said, as typed (a UPN or mail); kept so an invalid row can be shown back.
    identifier = EncryptedCharField(max_length=320, blank=True)
    user = models.ForeignKey(DirectoryUser, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    error_code = models.CharField(max_length=64, blank=True)
    message = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["job", "row_number"]
        constraints = [models.UniqueConstraint(fields=["job", "row_number"], name="bulk_row_unique")]
        indexes = [models.Index(fields=["job", "outcome"], name="bulk_row_outcome_idx")]


declare(
    BulkJobRow,
    subject=Subject.DIRECTORY_USER,
    subject_lookup="user",
    personal={
        "identifier": Personal(Category.IDENTITY, Retention.TECHNICAL_LOG),
        "user": Personal(Category.TENANT, Retention.TECHNICAL_LOG),
    },
    not_personal=["job", "row_number", "outcome", "error_code", "message"],
)
