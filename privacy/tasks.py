"""Celery tasks of the privacy app: thin, by id, safe to repeat."""

from __future__ import annotations

from celery import shared_task

from core.audit import Actor
from privacy.services import erasure, exports, recipient_notices, retention


@shared_task(name=exports.BUILD_TASK, acks_late=True, reject_on_worker_lost=True)
def build_export(job_id: str) -> str:
    """Build one export. A redelivery finds the job running (lease held) or ready and does nothing."""
    job = exports.export_build(job_id=job_id)
    return job.status if job is not None else "skipped"


@shared_task(name="privacy.purge_expired_exports", acks_late=True, reject_on_worker_lost=True)
def purge_expired_exports() -> int:
    return exports.export_purge_expired()


@shared_task(name="privacy.run_due_erasures", acks_late=True, reject_on_worker_lost=True)
def run_due_erasures() -> int:
    """Carry out erasures whose grace period is over; each is idempotent, so a redelivery is harmless."""
    done = 0
    for erasure_id in erasure.erasures_due().values_list("pk", flat=True):
        erasure.erasure_perform(erasure_id=erasure_id, actor=Actor.system("privacy.erasure"))
        done += 1
    return done


@shared_task(name="privacy.retention_purge", acks_late=True, reject_on_worker_lost=True)
def retention_purge() -> dict:
    """Nightly: purge what has outlived its retention. Repeating it removes nothing more."""
    return retention.retention_purge().counts


@shared_task(name=recipient_notices.SEND_TASK, acks_late=True, reject_on_worker_lost=True)
def send_recipient_notices(request_id: str | None = None) -> int:
    """Send pending Art. 19 notices (one request's on commit, everyone's hourly). Safe to repeat."""
    return recipient_notices.recipient_notices_send(request_id=request_id)
