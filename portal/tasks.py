import socket

from celery import shared_task
from django.db import connection

from core.api.idempotency import purge_expired


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
