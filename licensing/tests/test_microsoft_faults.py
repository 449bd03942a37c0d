"""Retries, Retry-After, budgets, timeouts and log hygiene, against the emulator's fault injection."""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict

import pytest

from accounts.tests.factories import OrganizationFactory
from licensing.microsoft import errors
from licensing.microsoft.auth import PC_SCOPE
from licensing.microsoft.resources import CartLine

from .conftest import CLIENT_SECRET
from .microsoft_helpers import basic_offer, new_customer

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]


def test_thirty_percent_faults_every_operation_completes_once(ms, emulator, sleeps):
    emulator.update_settings(sandboxLimits=False)  # eight subscriptions for one customer
    customer = new_customer(ms, OrganizationFactory())
    availability, _ = basic_offer(ms)
    emulator.clear_requests_log()
    emulator.fault("/partnercenter/*", status=429, retryAfter=1, rate=0.15, seed=11, times=None)
    emulator.fault("/partnercenter/*", status=503, rate=0.15, seed=12, times=None)

    checkout_ids = []
    for _ in range(8):
        cart = ms.partner_center.create_cart(
            customer_id=customer.id, request_id=str(uuid.uuid4()),
            lines=[CartLine(availability.catalog_item_id, 1, "P1M", "monthly")],
        )
        checkout_id = str(uuid.uuid4())
        ms.partner_center.checkout_cart(customer_id=customer.id, cart_id=cart.id, request_id=checkout_id)
        checkout_ids.append(checkout_id)
    emulator.clear_faults()

    log = emulator.requests_log(method="POST", path="/partnercenter/v1/customers/*/checkout")
    by_id = defaultdict(list)
    for entry in log:
        by_id[entry["headers"]["Ms-Requestid"]].append(entry["status"])
    assert set(by_id) == set(checkout_ids)  # one MS-RequestId per logical checkout, reused on retries
    assert all(statuses[-1] == 201 for statuses in by_id.values())
    assert any(len(statuses) > 1 for statuses in by_id.values()), "the seeded faults should have forced retries"
    assert len(ms.partner_center.list_orders(customer_id=customer.id)) == len(checkout_ids)  # no duplicate orders
    assert sleeps  # backoff happened through the injected sleep


def test_a_retried_write_replays_instead_of_repeating(ms):
    customer = new_customer(ms, OrganizationFactory())
    availability, _ = basic_offer(ms)
    cart = ms.partner_center.create_cart(
        customer_id=customer.id, request_id=str(uuid.uuid4()),
        lines=[CartLine(availability.catalog_item_id, 1, "P1M", "monthly")],
    )
    request_id = str(uuid.uuid4())
    first = ms.partner_center.checkout_cart(customer_id=customer.id, cart_id=cart.id, request_id=request_id)
    # A redelivered task sends the same request id: Partner Center answers with the first result.
    again = ms.partner_center.checkout_cart(customer_id=customer.id, cart_id=cart.id, request_id=request_id)
    assert again.orders[0].id == first.orders[0].id
    assert len(ms.partner_center.list_orders(customer_id=customer.id)) == 1


def test_retry_after_is_honoured(ms, emulator, sleeps):
    emulator.fault("/partnercenter/v1/customers", method="GET", status=429, retryAfter=7, times=1)
    assert list(ms.partner_center.iter_customers())
    assert sleeps == [7.0]


def test_retry_after_longer_than_a_worker_should_wait_surfaces_at_once(ms, emulator, sleeps):
    emulator.fault("/partnercenter/v1/customers", method="GET", status=429, retryAfter=3600, times=1)
    with pytest.raises(errors.Throttled) as caught:
        list(ms.partner_center.iter_customers())
    assert caught.value.retry_after == 3600
    assert sleeps == []


def test_permanent_failure_is_typed_after_the_budget(ms, emulator, settings, sleeps):
    ms.tokens.app_token(tenant_id=settings.MS_PARTNER_TENANT_ID, scope=PC_SCOPE)
    emulator.clear_requests_log()
    emulator.fault("/partnercenter/v1/customers", method="GET", status=503, times=100)
    with pytest.raises(errors.TransientFailure) as caught:
        list(ms.partner_center.iter_customers())
    assert caught.value.status == 503 and caught.value.request_id
    attempts = emulator.requests_log(method="GET", path="/partnercenter/v1/customers")
    assert len(attempts) == settings.MS_RETRY_BUDGET
    assert {a["headers"]["Ms-Requestid"] for a in attempts} == {caught.value.request_id}
    assert len(sleeps) == settings.MS_RETRY_BUDGET - 1
    # Full jitter: each wait is within [0, 0.5 * 2^(n-1)] seconds.
    assert all(0 <= s <= 0.5 * 2**i for i, s in enumerate(sleeps))


def test_business_errors_are_not_retried(ms, emulator):
    with pytest.raises(errors.NotFound):
        ms.partner_center.get_customer(str(uuid.uuid4()))
    assert len(emulator.requests_log(method="GET", path="/partnercenter/v1/customers/*")) == 1


def test_a_hang_is_cut_by_the_timeout(emulator, make_client, settings, sleeps):
    settings.MS_HTTP_TIMEOUT = 0.5
    settings.MS_RETRY_BUDGET = 2
    ms = make_client()
    ms.tokens.app_token(tenant_id=settings.MS_PARTNER_TENANT_ID, scope=PC_SCOPE)
    emulator.fault("/partnercenter/v1/customers", method="GET", kind="hang", hangSeconds=3, times=2)
    started = time.monotonic()
    with pytest.raises(errors.TransientFailure, match="timeout"):
        list(ms.partner_center.iter_customers())
    assert time.monotonic() - started < 2.5
    assert len(sleeps) == 1


def test_logs_carry_ids_but_no_tokens_secrets_or_personal_data(ms, emulator, caplog, settings):
    caplog.set_level(logging.DEBUG)
    organization = OrganizationFactory()
    customer = new_customer(ms, organization)
    emulator.fault("/partnercenter/v1/customers/*", method="GET", status=503, times=1)
    ms.partner_center.get_customer(customer.id)
    ms.graph.get_user(tenant_id=customer.id, user_key=f"admin@{customer.domain}", organization=organization)
    token = ms.tokens.app_token(tenant_id=settings.MS_PARTNER_TENANT_ID, scope=PC_SCOPE)

    # The in-thread emulator's own logs are a separate program's; judge the portal's records.
    portal = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    text = "\n".join(r.getMessage() for r in portal)
    assert token not in text and token.split(".")[2] not in text
    assert CLIENT_SECRET not in text
    # urllib3 writes request lines at DEBUG (off in every environment: LOG_LEVEL defaults to INFO);
    # everything else, at any level, carries no e-mail address or UPN.
    above_urllib3 = "\n".join(r.getMessage() for r in portal if not r.name.startswith("urllib3"))
    assert "jane.doe@example.com" not in above_urllib3 and f"admin@{customer.domain}" not in above_urllib3
    records = [r for r in caplog.records if r.name == "licensing.microsoft.http"]
    assert any(r.ms_status == 503 for r in records) and any(r.ms_attempt == 2 for r in records)
    assert all(r.ms_request_id and r.ms_correlation_id and r.ms_duration_ms >= 0 for r in records)
    assert any(r.ms_path.endswith("/users/{upn}") for r in records)


def test_a_batch_sent_several_chunks_at_once_answers_in_order_and_logs_a_disclosure_per_call(ms, emulator):
    from core.models import Disclosure
    from core.registry import Category
    from licensing.microsoft.disclosure import PersonalData, Purpose

    fabrikam = "3f2c7b1e-8d4a-4c6e-9b0f-1a2d3e4f5a6b"
    organization = OrganizationFactory()
    users = next(ms.graph.iter_user_pages(tenant_id=fabrikam, select=["id", "displayName"], top=45))
    requests = [{"id": f"item-{n}", "method": "GET", "url": f"/users/{u.id}?$select=id,displayName"}
                for n, u in enumerate(users)]
    request_id = str(uuid.uuid4())
    personal = PersonalData.of([Category.IDENTITY], purpose=Purpose.LICENSE_MANAGEMENT, organization=organization)
    emulator.clear_requests_log()

    results = ms.graph.batch(tenant_id=fabrikam, requests=requests, request_id=request_id, personal=personal,
                             operation="users.read_batch", in_flight=3)

    assert [r.key for r in results] == [f"item-{n}" for n in range(len(users))]
    assert [r.body["id"] for r in results] == [u.id for u in users]
    assert len(emulator.requests_log(method="POST", path="/graph/v1.0/$batch")) == 3  # 20, 20 and 5
    logged = Disclosure.objects.filter(organization=organization, operation="graph.users.read_batch")
    assert sorted(logged.values_list("subject_count", flat=True)) == [5, 20, 20]
