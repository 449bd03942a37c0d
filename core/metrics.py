"""Prometheus metrics: what the process counts, and what higher floors report at scrape time.

Counted here, as it happens: HTTP requests per view (rate, latency, status), Celery tasks per
queue (counts, durations, failures; the roof's Celery app feeds them), and Microsoft calls
(latency, 429s; the licensing client feeds them).

Measured at scrape time: numbers that live in the database, such as the outbox depth. A higher
floor registers a function with :func:`register_scrape_collector` in its ``AppConfig.ready()``
(licensing registers the outbox, privacy the request queue). Each function
returns Prometheus metric families and runs in the scraping request, so it must be one or two
aggregate queries.

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn with several workers), counters and histograms
are aggregated across processes by prometheus_client's multiprocess mode.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

REQUESTS = Counter(
    "portal_http_requests_total", "HTTP requests by view, method and status.", ["view", "method", "status"]
)
REQUEST_SECONDS = Histogram(
    "portal_http_request_duration_seconds",
    "HTTP request latency by view.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.3, 0.5, 1, 2.5, 5, 10),
)
TASKS = Counter("portal_celery_tasks_total", "Celery tasks by name, queue and outcome.", ["task", "queue", "outcome"])
TASK_SECONDS = Histogram(
    "portal_celery_task_duration_seconds",
    "Celery task run time by queue.",
    ["queue"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
MICROSOFT_SECONDS = Histogram(
    "portal_microsoft_call_duration_seconds",
    "Latency of each HTTP attempt to Microsoft (or the emulator) by API and status class.",
    ["api", "status_class"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
)
MICROSOFT_THROTTLED = Counter("portal_microsoft_throttled_total", "429 answers from Microsoft by API.", ["api"])

ScrapeCollector = Callable[[], Iterable[Metric]]
_scrape_collectors: dict[str, ScrapeCollector] = {}


def register_scrape_collector(name: str, collect: ScrapeCollector) -> None:
    """Report database-backed numbers at scrape time (see the module docstring)."""
    _scrape_collectors[name] = collect


class _ScrapeTimeCollector:
    def collect(self):
        for collect in _scrape_collectors.values():
            yield from collect()


def render() -> bytes:
    """The exposition text for one scrape."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry)
    scrape_registry = CollectorRegistry()
    scrape_registry.register(_ScrapeTimeCollector())
    return body + generate_latest(scrape_registry)


def status_class(status) -> str:
    return f"{str(status)[0]}xx" if isinstance(status, int) else str(status)


class MetricsMiddleware:
    """Counts every request by its URL pattern's name (never the raw path: ids stay out of labels)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match is not None else "") or "unmatched"
        REQUESTS.labels(view, request.method, str(response.status_code)).inc()
        REQUEST_SECONDS.labels(view, request.method).observe(time.perf_counter() - started)
        return response
