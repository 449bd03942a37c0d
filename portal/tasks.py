import socket

from celery import shared_task
from django.db import connection


@shared_task(name="portal.health_check")
def health_check() -> dict:
    """Proves a worker is alive and can reach the database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": "ok", "worker": socket.gethostname()}
