"""Periodic account jobs (Celery autodiscovery imports this module)."""

from celery import shared_task

from .grants import staff_grants_expire_and_remind


@shared_task(name="accounts.staff_grants_expire_and_remind", acks_late=True, reject_on_worker_lost=True)
def expire_and_remind_staff_grants() -> dict[str, int]:
    """Mark expired staff grants and send reminders before expiry; safe to repeat (each reminder once)."""
    return staff_grants_expire_and_remind()
