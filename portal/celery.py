"""The Celery app. Queues: provisioning (Microsoft calls), privacy (exports, purges), default.

Every task runs with acks_late and reject-on-worker-lost, so a killed worker's
task is redelivered; tasks are written to be safe to repeat.
"""

import gc
import os
import time

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_process_init
from kombu import Queue

from core.frame_room import with_room
from core.metrics import TASK_SECONDS, TASKS
from core.requestid import bind_log_context, unbind_log_context

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("provisioning"), Queue("privacy"))
app.conf.task_routes = {
    "licensing.*": {"queue": "provisioning"},
    "privacy.*": {"queue": "privacy"},
}
app.autodiscover_tasks()


class TenantTask(Task):
    """Base task: a task called with ``organization_id`` runs inside that tenant's context.

    Without it, tenant models return no rows: a task cannot read across tenants by accident. Every task runs with
    room on the interpreter's frame stack, as a request does (``core.frame_room``, decision 055).
    """

    acks_late = True
    reject_on_worker_lost = True

    def __call__(self, *args, **kwargs):
        return with_room(self._call_in_context, *args, **kwargs)

    def _call_in_context(self, *args, **kwargs):
        organization_id = kwargs.get("organization_id")
        if organization_id is None:
            return super().__call__(*args, **kwargs)
        from core.tenancy import tenant_context

        with tenant_context(organization_id):
            return super().__call__(*args, **kwargs)


app.Task = TenantTask


# Structured logs and metrics for every task: the task id on each log line, counts and durations per queue.
_running: dict[str, tuple[float, object]] = {}


def _queue_of(task) -> str:
    delivery = getattr(task.request, "delivery_info", None) or {}
    return delivery.get("routing_key") or getattr(task, "queue", None) or "default"


@task_prerun.connect
def _task_started(task_id=None, task=None, **_):
    _running[task_id] = (time.perf_counter(), bind_log_context(task_id=task_id, task=task.name))


@task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **_):
    started, token = _running.pop(task_id, (None, None))
    queue = _queue_of(task)
    TASKS.labels(task.name, queue, (state or "unknown").lower()).inc()
    if started is not None:
        TASK_SECONDS.labels(queue).observe(time.perf_counter() - started)
    if token is not None:
        unbind_log_context(token)


def freeze_startup_heap() -> None:
    """Leave what start-up built (Django, the apps, their modules and caches) out of the cyclic collector's scans.

    A full collection walks every tracked object of the process: about 170,000 once the portal is loaded, 90 to
    150 ms a time on this machine, and a directory sync or a bulk job of 10,000 users set off one to five of them
    with their pages and rows (docs/decisions/047-sync-and-bulk-fourth-round.md). Frozen objects are still freed
    by reference counting; one that later becomes garbage inside a reference cycle is not, a leak bounded by
    what start-up allocated. Collected first, so that start-up's own garbage is not kept for good.
    """
    gc.collect()
    gc.freeze()


@worker_process_init.connect
def _freeze_after_start_up(**_):
    freeze_startup_heap()
