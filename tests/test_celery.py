"""Celery wiring: the tenant base task, and a real worker proving it is alive."""

import os
import subprocess
import sys
import uuid

import pytest
from celery import shared_task
from django.conf import settings
from django.db import connection

from core import frame_room
from core.tenancy import current_org_ids
from portal.celery import app
from tests.workers import database_url_for_worker


@shared_task(name="tests.report_tenant_scope")
def report_tenant_scope(*, organization_id=None):
    return current_org_ids()


@pytest.mark.django_db
def test_task_with_organization_id_runs_inside_that_tenant():
    org_id = uuid.uuid4()
    result = report_tenant_scope.apply(kwargs={"organization_id": str(org_id)}).result
    assert result == (str(org_id),)


def test_task_without_organization_has_no_tenant_scope():
    assert report_tenant_scope.apply().result is None


@shared_task(name="tests.runs_with_room")
def runs_with_room(*, organization_id=None):
    frame = sys._getframe()
    while frame is not None and frame.f_code is not frame_room.with_room.__code__:
        frame = frame.f_back
    return frame is not None, current_org_ids()


@pytest.mark.django_db
def test_every_task_runs_with_room_on_the_frame_stack_and_in_its_tenant():
    in_room, scope = runs_with_room.apply().result
    assert in_room and scope is None
    org_id = str(uuid.uuid4())
    in_room, scope = runs_with_room.apply(kwargs={"organization_id": org_id}).result
    assert in_room and scope == (org_id,)


def test_every_task_acks_late_and_rejects_on_worker_loss():
    app.loader.import_default_modules()
    project_tasks = [task for name, task in app.tasks.items() if not name.startswith("celery.")]
    assert project_tasks
    for task in project_tasks:
        assert task.acks_late, task.name
        assert task.reject_on_worker_lost, task.name


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL: a real worker needs a real broker")
def test_health_check_runs_on_a_real_worker(tmp_path):
    env = {
        **os.environ,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PORTAL_VAR_DIR": str(tmp_path),
        # The health check only needs a database to answer; an in-memory test database cannot be shared.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}"
        if connection.vendor == "sqlite"
        else database_url_for_worker(),
    }
    queue = f"health-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool", "solo",
         "--concurrency", "1", "--loglevel", "warning", "--without-heartbeat", "--without-gossip", "--without-mingle"],
        env=env,
        cwd=settings.BASE_DIR,
    )
    app.conf.task_always_eager = False
    try:
        result = app.send_task("portal.health_check", queue=queue)
        assert result.get(timeout=60)["status"] == "ok"
    finally:
        app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
        worker.terminate()
        worker.wait(timeout=20)


def test_a_worker_process_freezes_what_start_up_built():
    """After start-up (worker_process_init), the loaded portal is out of the cyclic collector's full scans.

    The hook is called, not the signal sent: Celery's own receivers would put this process in a worker's state."""
    from celery.signals import worker_process_init

    from portal.celery import _freeze_after_start_up
    from tests.heap import objects_frozen_by

    assert _freeze_after_start_up in worker_process_init._live_receivers(None)
    # Django and the apps, not a handful of objects
    assert objects_frozen_by(lambda: _freeze_after_start_up(sender=None)) > 10_000
