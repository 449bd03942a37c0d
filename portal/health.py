"""Operators' endpoints: liveness, readiness and metrics. Cheap, and they reveal nothing sensitive.

- ``/healthz``: the process is up (no dependency is touched).
- ``/readyz``: the database answers and has every migration applied, the broker and the cache
  answer. 503 with the failing check's name (never its error text) when one does not.
- ``/metrics``: Prometheus exposition. With ``METRICS_TOKEN`` set it needs that bearer token;
  without one it answers only on loopback, so a default deployment does not publish it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from core.metrics import render

from .celery import app as celery_app

logger = logging.getLogger(__name__)

_migrations_applied = False  # once true it stays true for the process: migrations do not un-apply


@transaction.non_atomic_requests  # a liveness probe opens no database connection
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database() -> None:
    global _migrations_applied
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    if not _migrations_applied:
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise RuntimeError("unapplied migrations")
        _migrations_applied = True


def _broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _cache() -> None:
    cache.set("readyz", "1", 5)
    if cache.get("readyz") != "1":
        raise RuntimeError("cache did not return what was stored")


READINESS_CHECKS = {"database": _database, "broker": _broker, "cache": _cache}


@never_cache
@transaction.non_atomic_requests
def readyz(request):
    results, ready = {}, True
    for name, check in READINESS_CHECKS.items():
        started = time.perf_counter()
        try:
            check()
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
        except Exception:
            logger.warning("Readiness check %s failed", name, exc_info=True)
            results[name] = {"ok": False}
            ready = False
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": results}, status=200 if ready else 503)


def _metrics_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        header = request.headers.get("Authorization", "")
        return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@never_cache
def metrics(request):
    if not _metrics_allowed(request):
        raise Http404
    return HttpResponse(render(), content_type="text/plain; version=0.0.4; charset=utf-8")
