"""Operators' endpoints and signals: liveness, readiness, metrics and structured logs."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
import time_machine
from django.db import OperationalError
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts.api_keys import api_key_create
from accounts.authentication import ApiKeyAuthentication
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, UserFactory
from accounts.tests.helpers import verified_client
from core.logging import JsonFormatter, RequestIdFilter
from core.requestid import (
    bind_log_context,
    get_log_context,
    reset_request_context,
    set_request_context,
    unbind_log_context,
)
from core.tenancy import tenant_context
from core.views import server_error
from licensing.models import ProvisioningOperation
from portal.celery import app as celery_app
from portal.models import JobRun
from portal.status import job_run_record, system_status
from portal.tasks import purge_idempotency_keys, worker_heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_touches_nothing(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "cache"}
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_is_503_naming_an_unreachable_broker_without_its_error(client):
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/readyz")
    finally:
        celery_app.conf.broker_url = previous
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["broker"] == {"ok": False}
    assert body["checks"]["database"]["ok"] is True
    assert b"127.0.0.1" not in response.content and b"refused" not in response.content.lower()


def test_metrics_answer_loopback_only_without_a_token(client):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 404


def test_metrics_need_the_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "scrape-secret-123"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    ok = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer scrape-secret-123")
    assert ok.status_code == 200


def _sample(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus exposition text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_requests_are_counted_by_view_name_not_path(client):
    before = _sample(client.get("/metrics").content.decode(), "portal_http_requests_total",
                     view="portal:healthz", method="GET", status="200")
    client.get("/healthz")
    client.get("/healthz")
    text = client.get("/metrics").content.decode()
    assert _sample(text, "portal_http_requests_total", view="portal:healthz", method="GET", status="200") == before + 2
    assert "/healthz" not in text  # paths (and the ids in them) never become labels


def test_outbox_depth_and_oldest_age_are_measured_at_scrape_time(client, organization):
    with time_machine.travel(timezone.now() - timedelta(minutes=5), tick=False), tenant_context(organization):
        ProvisioningOperation.objects.create(organization=organization, kind="order.checkout")
    with tenant_context(organization):
        ProvisioningOperation.objects.create(organization=organization, kind="order.checkout", status="running")
        ProvisioningOperation.objects.create(organization=organization, kind="order.checkout", status="succeeded")
    text = client.get("/metrics").content.decode()
    assert _sample(text, "portal_outbox_depth", status="pending") == 1
    assert _sample(text, "portal_outbox_depth", status="running") == 1
    assert 290 <= _sample(text, "portal_outbox_oldest_age_seconds") <= 400


def _json_line(message: str, **extra) -> dict:
    record = logging.LogRecord("portal.test", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    RequestIdFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_json_logs_carry_request_organisation_actor_and_task_ids(organization):
    tokens = set_request_context("req-abc-12345", "203.0.113.9")
    try:
        with tenant_context(organization):
            bound = bind_log_context(actor="user:42", task_id="t-1", operation_id="op-9")
            try:
                entry = _json_line("operation finished", ms_status=200)
            finally:
                unbind_log_context(bound)
    finally:
        reset_request_context(tokens)
    assert entry["request_id"] == "req-abc-12345"
    assert entry["organization_id"] == str(organization.pk)
    assert entry["actor"] == "user:42"
    assert entry["task_id"] == "t-1" and entry["operation_id"] == "op-9"
    assert entry["ms_status"] == 200
    assert entry["level"] == "INFO" and entry["message"] == "operation finished"
    # The client's address is personal data: it belongs to the audit chain, not to log lines.
    assert "203.0.113.9" not in json.dumps(entry)


def test_request_context_ends_with_the_request(organization):
    tokens = set_request_context("req-1-abcdefgh", None)
    bind_log_context(actor="api_key:7")  # bound without unbinding, as API key authentication does
    reset_request_context(tokens)
    assert "actor" not in _json_line("after the request")


def test_api_key_authentication_binds_the_key_as_actor(organization):
    owner = UserFactory()
    MembershipFactory(user=owner, organization=organization, role=Role.OWNER)
    key, secret = api_key_create(organization=organization, name="ops", role=Role.VIEWER, expires_at=None, actor=owner)
    request = Request(APIRequestFactory().get("/api/v1/organization/", HTTP_AUTHORIZATION=f"Bearer {secret}"))
    tokens = set_request_context("req-key-123456", None)
    try:
        ApiKeyAuthentication().authenticate(request)
        assert get_log_context()["actor"] == f"api_key:{key.pk}"
    finally:
        reset_request_context(tokens)
    assert get_log_context() == {}


# --- the staff status page -------------------------------------------------------------------

def test_status_page_needs_a_verified_staff_member(client):
    member = UserFactory()
    verified_client(client, member)
    assert client.get("/admin/status/").status_code == 302  # not staff: to the admin sign-in


def test_status_page_shows_workers_queues_outbox_jobs_and_microsoft(client, organization, settings):
    staff = UserFactory(is_staff=True)
    verified_client(client, staff)
    settings.MS_AUTHORITY_HOST = "https://127.0.0.1:1"  # nothing listens there: shown as unreachable
    job_run_record(kind=JobRun.Kind.WORKER, name="provisioning @ worker-1", state="alive")
    job_run_record(kind=JobRun.Kind.PERIODIC, name="licensing.tasks.sweep_operations", state="success")
    job_run_record(kind=JobRun.Kind.PERIODIC, name="licensing.tasks.sweep_operations", state="success")
    with tenant_context(organization):
        ProvisioningOperation.objects.create(organization=organization, kind="order.checkout")
    response = client.get("/admin/status/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "provisioning @ worker-1" in page and "Alive" in page
    assert "1 pending, 0 running" in page
    assert "licensing.tasks.sweep_operations" in page and "Overdue" in page  # other jobs never ran
    assert "Entra ID" in page and "ConnectionError" in page
    assert JobRun.objects.get(name="licensing.tasks.sweep_operations").runs == 2


def test_a_worker_without_a_recent_heartbeat_is_flagged(client):
    staff = UserFactory(is_staff=True)
    verified_client(client, staff)
    with time_machine.travel(timezone.now() - timedelta(minutes=10), tick=False):
        job_run_record(kind=JobRun.Kind.WORKER, name="privacy @ worker-2", state="alive")
    status = system_status(check_microsoft=False)
    assert [w["alive"] for w in status["workers"]] == [False]
    assert "No heartbeat for over 3 minutes" in client.get("/admin/status/").content.decode()


def test_heartbeats_and_periodic_runs_are_recorded_by_the_task_path():
    worker_heartbeat.delay(queue="privacy")
    purge_idempotency_keys.delay()
    kinds = {(run.kind, run.name.split(" @ ")[0]) for run in JobRun.objects.all()}
    assert (JobRun.Kind.WORKER, "privacy") in kinds
    assert (JobRun.Kind.PERIODIC, "portal.purge_idempotency_keys") in kinds
    assert not JobRun.objects.filter(kind=JobRun.Kind.PERIODIC, name="portal.worker_heartbeat").exists()


# --- a database that goes away ----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/subscriptions/", "/o/contoso/"])
def test_a_lost_database_connection_is_a_503_with_retry_after(rf, path):
    request = rf.get(path)
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        response = server_error(request)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    if path.startswith("/api/"):
        assert json.loads(response.content)["error"]["code"] == "service_unavailable"
    assert b"server closed" not in response.content


def test_other_errors_stay_500(rf):
    try:
        raise ValueError("boom")
    except ValueError:
        response = server_error(rf.get("/api/v1/subscriptions/"))
    assert response.status_code == 500
