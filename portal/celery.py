"""The Celery app. Queues: provisioning (Microsoft calls), privacy (exports, purges), default.

Every task runs with acks_late and reject-on-worker-lost, so a killed worker's
task is redelivered; tasks are written to be safe to repeat.
"""

import os

from celery import Celery, Task
from kombu import Queue

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

    Without it, tenant models return no rows: a task cannot read across tenants by accident.
    """

    acks_late = True
    reject_on_worker_lost = True

    def __call__(self, *args, **kwargs):
        organization_id = kwargs.get("organization_id")
        if organization_id is None:
            return super().__call__(*args, **kwargs)
        from core.tenancy import tenant_context

        with tenant_context(organization_id):
            return super().__call__(*args, **kwargs)


app.Task = TenantTask
