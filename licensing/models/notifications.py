"""In-dashboard notifications (one row per recipient) and staff-published service announcements."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.models import BaseModel, TenantModel
from core.registry import Category, Personal, Retention, Subject, declare


class Notification(TenantModel):
    class Kind(models.TextChoices):
        RENEWAL_REMINDER = "renewal_reminder", "Renewal reminder"
        CANCELLATION_WINDOW = "cancellation_window", "Cancellation window closing"
        PROVISIONING_FAILED = "provisioning_failed", "Provisioning failed"
        LICENSES_EXPIRING = "licenses_expiring", "Licenses expiring"
        SERVICE_HEALTH = "service_health", "Service health"
        ASSIGNMENT = "assignment", "License assignment"
        OVER_ASSIGNED = "over_assigned", "More licenses assigned than purchased"

    class Level(models.TextChoices):
        INFO = "info", "Information"
        WARNING = "warning", "Warning"
        DANGER = "danger", "Action needed"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link_url = models.CharField(max_length=500, blank=True)
    # Makes each reminder idempotent: e.g. "renewal:<subscription>:<term end>:<offset>".
    dedupe_key = models.CharField(max_length=200)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "recipient", "dedupe_key"], name="notification_once")
        ]
        indexes = [models.Index(fields=["organization", "recipient", "read_at"], name="notification_unread_idx")]

    def __str__(self):
        return self.title


declare(
    Notification,
    subject=Subject.PORTAL_USER,
    subject_lookup="recipient",
    personal={
        "recipient": Personal(Category.CONTACT),
        "read_at": Personal(Category.TECHNICAL_LOG, Retention.TECHNICAL_LOG),
        "emailed_at": Personal(Category.TECHNICAL_LOG, Retention.TECHNICAL_LOG),
    },
    not_personal=["kind", "level", "title", "body", "link_url", "dedupe_key"],
)


class ServiceAnnouncementQuerySet(models.QuerySet):
    def visible_to(self, organization, now=None):
        now = now or timezone.now()
        live = self.filter(published_at__isnull=False, published_at__lte=now).filter(
            models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=now)
        )
        return live.filter(models.Q(all_organizations=True) | models.Q(organizations=organization)).distinct()


class ServiceAnnouncement(BaseModel):
    """Staff-published service health notice, for every organisation or a chosen few. Not tenant-owned."""

    class Severity(models.TextChoices):
        INFO = "info", "Information"
        WARNING = "warning", "Degraded service"
        DANGER = "danger", "Outage"

    title = models.CharField(max_length=200)
    body = models.TextField()
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    all_organizations = models.BooleanField(default=True)
    organizations = models.ManyToManyField("accounts.Organization", blank=True, related_name="+")
    published_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = ServiceAnnouncementQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-created_at"]

    def __str__(self):
        return self.title


declare(
    ServiceAnnouncement,
    not_personal=[
        "title", "body", "severity", "all_organizations", "organizations", "published_at", "ends_at", "created_by",
    ],
)
