"""Stale keep-alive connections: the emulator resets a pooled connection that idled, as an Azure front
door or load balancer does, and the client sends the request again only where that is safe."""

from __future__ import annotations

import uuid

import pytest
import requests

from accounts.tests.factories import OrganizationFactory
from licensing.microsoft import errors
from licensing.microsoft.http import never_sent
from licensing.microsoft.resources import CartLine

from .directory_helpers import FABRIKAM
from .microsoft_helpers import basic_offer, new_customer

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]


def idle_reset(emulator, pattern: str, method: str) -> str:
    """Reset the next call to ``pattern`` that arrives on a reused connection (idle for any time)."""
    return emulator.fault(pattern, method=method, kind="idle_reset", idleSeconds=0, times=1)["id"]


def fault_hits(emulator, rule_id: str) -> int:
    rules = emulator.session.get(emulator._url("/faults"), timeout=10).json()["faults"]
    return next(r["hits"] for r in rules if r["id"] == rule_id)


def test_a_read_on_a_stale_pooled_connection_is_retried_once_at_once(ms, emulator, sleeps):
    customers = list(ms.partner_center.iter_customers())  # the session now pools a live connection
    emulator.clear_requests_log()
    rule = idle_reset(emulator, "/partnercenter/v1/customers", "GET")

    assert list(ms.partner_center.iter_customers()) == customers
    assert fault_hits(emulator, rule) == 1  # the first attempt really met the reset
    answered = emulator.requests_log(method="GET", path="/partnercenter/v1/customers")
    assert [entry["status"] for entry in answered] == [200]  # the reset call was not carried out
    assert sleeps == [0.0]  # a stale connection says nothing about the server: no backoff


def test_a_partner_center_write_is_sent_again_with_its_request_id_and_carried_out_once(ms, emulator, sleeps):
    customer = new_customer(ms, OrganizationFactory())
    availability, _ = basic_offer(ms)
    emulator.clear_requests_log()
    rule = idle_reset(emulator, "/partnercenter/v1/customers/*/carts", "POST")
    request_id = str(uuid.uuid4())

    cart = ms.partner_center.create_cart(
        customer_id=customer.id,
        request_id=request_id,
        lines=[CartLine(availability.catalog_item_id, 1, "P1M", "monthly")],
    )
    assert cart.id and fault_hits(emulator, rule) == 1
    carried_out = emulator.requests_log(method="POST", path="/partnercenter/v1/customers/*/carts")
    assert [(e["status"], e["headers"]["Ms-Requestid"]) for e in carried_out] == [(201, request_id)]


def test_a_graph_post_that_got_no_answer_is_not_sent_again(ms, emulator, sleeps):
    organization = OrganizationFactory()
    ms.graph.subscribed_skus(tenant_id=FABRIKAM)  # token and a pooled connection to Graph
    emulator.clear_requests_log()
    rule = idle_reset(emulator, "/graph/v1.0/users", "POST")
    upn = "late.answer@fabrikamdemo.onmicrosoft.com"

    with pytest.raises(errors.OutcomeUnknown) as caught:
        ms.graph.create_user(
            organization=organization,
            tenant_id=FABRIKAM,
            request_id=str(uuid.uuid4()),
            display_name="Late Answer",
            mail_nickname="late.answer",
            user_principal_name=upn,
            password="Correct-Horse-Battery-9!",
        )
    assert caught.value.retryable  # the caller may try again, after looking
    assert fault_hits(emulator, rule) == 1
    # Graph has no idempotency key for POST /users: a blind resend could create the user twice (or
    # fail on a conflict the portal caused). The client sent it once, and did not wait to try again.
    assert emulator.requests_log(method="POST", path="/graph/v1.0/users") == []
    assert sleeps == []
    with pytest.raises(errors.NotFound):
        ms.graph.get_user(tenant_id=FABRIKAM, user_key=upn, organization=organization)


def test_a_refused_connection_counts_as_never_sent_so_any_request_may_be_sent_again():
    refused = requests.Session()
    refused.trust_env = False
    with pytest.raises(requests.ConnectionError) as caught:
        refused.post("http://127.0.0.1:9/", timeout=2)  # discard port: nothing listens
    assert never_sent(caught.value)
