"""The staff "System status" page's numbers: workers, queues, the outbox, periodic jobs, Microsoft.

Writes (job runs, heartbeats) come from the Celery app's task signals; reads are here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from licensing.microsoft.reachability import microsoft_reachability
from licensing.provisioning import outbox_backlog

from .models import JobRun

WORKER_STALE_AFTER = timedelta(minutes=3)  # heartbeats come every minute
QUEUES = ("provisioning", "privacy", "default")


def job_run_record(*, kind: str, name: str, state: str) -> None:
    """Upsert the last run of a job or a worker's heartbeat (one row each, a counter of runs)."""
    now = timezone.now()
    updated = JobRun.objects.filter(kind=kind, name=name).update(last_run_at=now, last_state=state, runs=F("runs") + 1)
    if not updated:
        JobRun.objects.get_or_create(kind=kind, name=name, defaults={"last_run_at": now, "last_state": state,
                                                                       "runs": 1})


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    every_seconds: float
    last: JobRun | None

    @property
    def overdue(self) -> bool:
        if self.last is None:
            return True
        return timezone.now() - self.last.last_run_at > timedelta(seconds=self.every_seconds * 2 + 120)


def queue_depths() -> dict[str, int | None]:
    """Messages waiting per queue on a Redis broker; None where the broker cannot say (the dev filesystem one)."""
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return dict.fromkeys(QUEUES)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
    try:
        return {queue: client.llen(queue) for queue in QUEUES}
    except redis.RedisError:
        return dict.fromkeys(QUEUES)
    finally:
        client.close()


def system_status(*, check_microsoft: bool = True) -> dict:
    runs = {(run.kind, run.name): run for run in JobRun.objects.all()}
    jobs = [
        PeriodicJob(name, entry["task"], float(entry["schedule"]), runs.get((JobRun.Kind.PERIODIC, entry["task"])))
        for name, entry in sorted(settings.CELERY_BEAT_SCHEDULE.items())
        if entry["task"] != "portal.worker_heartbeat"
    ]
    now = timezone.now()
    workers = [
        {"name": run.name, "last_seen": run.last_run_at, "alive": now - run.last_run_at <= WORKER_STALE_AFTER}
        for (kind, _), run in sorted(runs.items()) if kind == JobRun.Kind.WORKER
    ]
    return {
        "workers": workers,
        "queues": queue_depths(),
        "outbox": outbox_backlog(),
        "jobs": jobs,
        "microsoft": microsoft_reachability() if check_microsoft else [],
    }
