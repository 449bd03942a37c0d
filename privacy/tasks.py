"""Celery tasks of the privacy app: thin, by id, safe to repeat."""

from __future__ import annotations

from celery import shared_task

from privacy.services import exports


@shared_task(name=exports.BUILD_TASK, acks_late=True, reject_on_worker_lost=True)
def build_export(job_id: str) -> str:
    """Build one export. A redelivery finds the job running (lease held) or ready and does nothing."""
    job = exports.export_build(job_id=job_id)
    return job.status if job is not None else "skipped"


@shared_task(name="privacy.purge_expired_exports", acks_late=True, reject_on_worker_lost=True)
def purge_expired_exports() -> int:
    return exports.export_purge_expired()
