"""Operations bookkeeping for the staff status page: when each periodic job and each worker last ran."""

from django.db import models

from core.models import BaseModel
from core.registry import declare


class JobRun(BaseModel):
    """The last run of one periodic task, or the last heartbeat of one worker (``kind``)."""

    class Kind(models.TextChoices):
        PERIODIC = "periodic", "Periodic job"
        WORKER = "worker", "Worker heartbeat"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200)
    last_run_at = models.DateTimeField()
    last_state = models.CharField(max_length=32, blank=True)
    runs = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="one_job_run_row_per_name")]
        ordering = ["kind", "name"]

    def __str__(self):
        return f"{self.get_kind_display()} {self.name}"


declare(JobRun, not_personal=["kind", "name", "last_run_at", "last_state", "runs"])
