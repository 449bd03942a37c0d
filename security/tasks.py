"""Periodic Azure fraud work (registered in ``CELERY_BEAT_SCHEDULE``): thin, safe to repeat (each signal
opens its case once)."""

from celery import shared_task

from . import fraud


@shared_task(name="security.fraud.poll_events", acks_late=True, reject_on_worker_lost=True)
def poll_fraud_events() -> int:
    return fraud.fraud_events_poll()


@shared_task(name="security.fraud.scan_usage", acks_late=True, reject_on_worker_lost=True)
def scan_azure_usage() -> int:
    return fraud.azure_usage_export_scan()
