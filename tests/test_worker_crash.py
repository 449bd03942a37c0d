"""A real Celery worker killed (SIGKILL) in the middle of a purchase: the order still completes exactly once.

The first worker dies while its checkout request is in flight; the emulator carries the checkout out anyway,
so Microsoft holds an order whose answer nobody received. The lease then runs out, the sweeper (as beat would
run it) re-dispatches the operation to a second worker, and that run replays the same MS-RequestId: Partner
Center answers with the first order instead of placing another one.

Both workers listen on a queue of their own (``licensing.*`` is routed to it in each process), so a worker of
another run or of the developer's machine on the same Redis cannot take the message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from celery.app import routes as celery_routes
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import MicrosoftTenant
from accounts.roles import Role
from core.audit import Actor
from core.models import AuditEvent
from core.tenancy import tenant_context
from licensing.microsoft.client import default_client
from licensing.models import Order, ProvisioningAttempt, ProvisioningOperation, Subscription
from licensing.provisioning import operation_sweep
from licensing.services import purchases
from licensing.tests.conftest import CLIENT_ID, CLIENT_SECRET, PARTNER_TENANT_ID, emulator, emulator_server  # noqa: F401
from licensing.tests.core.conftest import control, linked, offer, owner, ready  # noqa: F401
from portal.celery import app
from tests.workers import database_url_for_worker

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL: a real worker needs a real broker"),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL: the worker subprocess must share the test database"),
]

Status = ProvisioningOperation.Status
Outcome = ProvisioningAttempt.Outcome

CHECKOUT_PATH = "/partnercenter/v1/customers/*/carts/*/checkout"
LEASE_SECONDS = 8  # the worker's lease: long enough for a healthy run, short enough to wait out
CHECKOUT_LATENCY_MS = 3000  # holds the first checkout in flight while the worker is killed

# Starts a worker whose licensing tasks (the executor, and whatever the sweeper dispatches) go to `queue`.
WORKER_LAUNCHER = """
import sys
from portal.celery import app
queue = sys.argv[1]
app.conf.task_routes = {"licensing.*": {"queue": queue}}
app.worker_main(["worker", "-Q", queue, "--pool", "solo", "--concurrency", "1", "--loglevel", "warning",
                 "--without-heartbeat", "--without-gossip", "--without-mingle"])
"""


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_checkout_completes_the_order_exactly_once(ready, emulator, monkeypatch, settings,  # noqa: F811
                                                                     tmp_path):
    organization, user = ready.organization, ready.user
    with tenant_context(organization):
        customer_id = MicrosoftTenant.objects.for_org(organization).get().partner_customer_id
    pc = default_client().partner_center
    orders_before = {o.id for o in pc.list_orders(customer_id=customer_id)}

    queue = f"crash-{uuid.uuid4().hex[:8]}"
    # From here on this process is the web tier: it enqueues to the broker instead of running tasks inline.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setattr(app.amqp.router, "routes", celery_routes.prepare({"licensing.*": {"queue": queue}}))
    cache_prefix = f"crash-{uuid.uuid4().hex[:8]}"
    env = _worker_env(emulator.base_url, emulator.ca_path, tmp_path, cache_prefix)
    log_dir = tmp_path / "workers"
    log_dir.mkdir()
    workers: list[subprocess.Popen] = []

    def start_worker(name: str) -> subprocess.Popen:
        with open(log_dir / f"{name}.log", "wb") as log:  # the child keeps its own copy of the descriptor
            worker = subprocess.Popen([sys.executable, "-c", WORKER_LAUNCHER, queue], env=env,
                                      cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
        workers.append(worker)
        return worker

    def logs() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(log_dir.iterdir()))

    try:
        first = start_worker("worker-1")
        emulator.fault(CHECKOUT_PATH, method="POST", kind="latency", latencyMs=CHECKOUT_LATENCY_MS, times=1)
        with tenant_context(organization):
            order = purchases.order_place(organization=organization, actor=Actor.user(user), user=user,
                                          role=Role.OWNER, price=offer(), quantity=7)
        operation_id = order.operation_id

        def load() -> ProvisioningOperation:
            with tenant_context(organization):
                return ProvisioningOperation.objects.for_org(organization).get(pk=operation_id)

        def attempts() -> list[ProvisioningAttempt]:
            with tenant_context(organization):
                return list(ProvisioningAttempt.objects.for_org(organization).filter(operation_id=operation_id)
                            .order_by("number"))

        def checkout_in_flight() -> bool:
            faults = emulator.session.get(f"{emulator.base_url}/_emulator/faults", timeout=10).json()["faults"]
            return load().status == Status.RUNNING and any(f["hits"] for f in faults)

        _wait_for(checkout_in_flight, 30, "the first worker to claim the operation and send the checkout", logs)
        first.kill()  # SIGKILL: no cleanup, no ack, no outcome recorded
        first.wait(timeout=10)
        second = start_worker("worker-2")

        crashed = load()
        assert crashed.status == Status.RUNNING and crashed.attempts == 1
        assert [a.outcome for a in attempts()] == [Outcome.RUNNING]
        # A live lease belongs to a worker that may still be running: the sweeper leaves it alone.
        assert operation_sweep() == 0

        # Microsoft finishes the checkout whose answer the dead worker never read.
        _wait_for(lambda: any(e["status"] == 201 for e in _checkouts(emulator)), 15,
                  "the emulator to complete the abandoned checkout", logs)
        emulator.clear_faults()
        delay = (crashed.lease_expires_at - timezone.now()).total_seconds()
        time.sleep(max(0.0, delay) + 0.5)

        # Beat's sweep, carried out by the second worker: it re-dispatches the lost operation to itself.
        swept = app.send_task("licensing.tasks.sweep_operations", queue=queue)
        assert swept.get(timeout=30) == 1, logs()
        _wait_for(lambda: load().status in ProvisioningOperation.TERMINAL, 30,
                  "the second worker to finish the operation", logs)
        assert second.poll() is None, logs()
    finally:
        for worker in workers:
            _stop(worker)
        _forget_run(queue, cache_prefix)

    operation = load()
    assert operation.status == Status.SUCCEEDED, (operation.last_error, logs())
    assert operation.attempts == 2
    outcomes = [(a.number, a.outcome) for a in attempts()]
    assert outcomes == [(1, Outcome.ABANDONED), (2, Outcome.SUCCEEDED)]
    with tenant_context(organization):
        succeeded_events = AuditEvent.objects.filter(action="provisioning.succeeded", target_id=str(operation_id))
        assert succeeded_events.count() == 1
        order = Order.objects.for_org(organization).get(pk=order.pk)
        subscriptions = list(Subscription.objects.for_org(organization).filter(order=order))
    assert order.status == Order.Status.COMPLETED

    # Every checkout carried the operation's MS-RequestId, so the retry replayed the first order.
    checkouts = _checkouts(emulator)
    assert len(checkouts) == 2 and all(e["status"] == 201 for e in checkouts), checkouts
    assert {e["headers"]["Ms-Requestid"] for e in checkouts} == {str(operation.ms_request_id)}
    new_orders = [o for o in pc.list_orders(customer_id=customer_id) if o.id not in orders_before]
    assert [o.id for o in new_orders] == [order.ms_order_id]
    remote = list(pc.iter_subscriptions(customer_id=customer_id, order_id=order.ms_order_id))
    assert len(remote) == 1 and remote[0].quantity == 7
    assert [s.ms_subscription_id for s in subscriptions] == [remote[0].id]


def _worker_env(base_url: str, ca_path: str, tmp_path: Path, cache_prefix: str) -> dict:
    return {
        **os.environ,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PORTAL_VAR_DIR": str(tmp_path),
        "DATABASE_URL": database_url_for_worker(),
        "REDIS_URL": settings.REDIS_URL,
        # Outside pytest the worker caches in Redis: a prefix of its own keeps tokens from other runs out.
        "CACHE_KEY_PREFIX": cache_prefix,
        "LICENSING_OPERATION_LEASE_SECONDS": str(LEASE_SECONDS),
        "MSEMULATOR_URL": base_url,
        "MS_AUTHORITY_HOST": base_url,
        "MS_PARTNER_CENTER_URL": f"{base_url}/partnercenter",
        "MS_GRAPH_URL": f"{base_url}/graph",
        "MS_CA_BUNDLE": ca_path,
        "MS_PARTNER_TENANT_ID": PARTNER_TENANT_ID,
        "MS_CLIENT_ID": CLIENT_ID,
        "MS_CLIENT_SECRET": CLIENT_SECRET,
        "MS_HTTP_TIMEOUT": "10",
    }


def _checkouts(control_api) -> list[dict]:
    return control_api.requests_log(method="POST", path=CHECKOUT_PATH)


def _wait_for(condition: Callable[[], bool], timeout: float, what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}.\n{logs()}")
        time.sleep(0.1)


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is not None:
        return
    worker.terminate()
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=10)


def _forget_run(queue: str, cache_prefix: str) -> None:
    """Leave nothing of this run in Redis: the queue, the killed worker's unacknowledged message, the
    workers' token cache."""
    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        for tag, raw in client.hgetall("unacked").items():
            if json.loads(raw)[2] == queue:  # kombu keeps [message, exchange, routing key]
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
        for key in client.scan_iter(f"{cache_prefix}:*"):
            client.delete(key)
