import logging
import socket

from celery import shared_task
from celery.signals import task_postrun
from django.conf import settings
from django.db import connection

from core.api.idempotency import purge_expired

from .models import JobRun
from .status import job_run_record

logger = logging.getLogger(__name__)


@shared_task(name="portal.health_check")
def health_check() -> dict:
    """Proves a worker is alive and can reach the database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": "ok", "worker": socket.gethostname()}


@shared_task(name="portal.purge_idempotency_keys", acks_late=True)
def purge_idempotency_keys() -> int:
    """Deletes Idempotency-Key records past their 24 hours (expired keys are also replaced lazily on reuse)."""
    return purge_expired()


@shared_task(name="portal.worker_heartbeat", acks_late=True, reject_on_worker_lost=True)
def worker_heartbeat(*, queue: str) -> None:
    """Beat sends one to each queue every minute; whichever worker takes it is alive (the status page)."""
    job_run_record(kind=JobRun.Kind.WORKER, name=f"{queue} @ {socket.gethostname()}", state="alive")


def _periodic_tasks() -> frozenset[str]:
    return frozenset(entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values())


@task_postrun.connect
def _record_periodic_run(task=None, state=None, **_):
    """The last run of each periodic job, for the status page. Bookkeeping must never fail the task."""
    if task is None or task.name not in _periodic_tasks() or task.name == "portal.worker_heartbeat":
        return
    try:
        job_run_record(kind=JobRun.Kind.PERIODIC, name=task.name, state=(state or "").lower())
    except Exception:
        logger.exception("Could not record the run of %s", task.name)
