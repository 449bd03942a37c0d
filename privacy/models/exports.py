"""Access reports and portability exports: one job per request, built by a Celery task in batches."""

from __future__ import annotations

from django.db import models

from core.models import BaseModel
from core.registry import declare

from .requests import PrivacyRequest


class ExportJob(BaseModel):
    """The export of one request. The one-to-one link makes a redelivered task find the same job
    (and do nothing when it is running or done). The file on disk is encrypted under the request's
    key; ``expires_at`` is when the download link stops working and the file is deleted."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        READY = "ready", "Ready to download"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired and deleted"

    request = models.OneToOneField(PrivacyRequest, on_delete=models.CASCADE, related_name="export")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    downloads = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)

    def __str__(self):
        return f"Export of {self.request_id} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.READY:
            return 100
        return min(99, self.rows_done * 100 // self.rows_total) if self.rows_total else 0


declare(
    ExportJob,
    not_personal=[
        "request", "status", "rows_total", "rows_done", "started_at", "lease_until", "finished_at", "expires_at",
        "file_name", "size", "sha256", "downloads", "error",
    ],
)
