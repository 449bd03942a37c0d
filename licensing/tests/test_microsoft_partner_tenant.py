"""Partner-tenant calls: App+User fraud events (Admin Agent), GDAP, the billing export stream."""

from __future__ import annotations

import uuid

import pytest

from accounts.tests.factories import OrganizationFactory
from core.models import Disclosure
from licensing.microsoft import errors

from .microsoft_helpers import buy, new_customer, rid

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]

LICENSE_ADMIN = "4d6ac14f-3453-41d0-bef9-a3e0c569773a"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"


def test_fraud_events_need_the_admin_agent_and_work_with_it(emulator, make_client, settings):
    with pytest.raises(errors.AuthenticationFailed, match="Admin Agent"):
        make_client().partner_center.list_fraud_events()

    settings.MS_ADMIN_AGENT_REFRESH_TOKEN = emulator.admin_agent_refresh_token()
    ms = make_client()
    events = ms.partner_center.list_fraud_events(status="Active")
    assert events and all(e.status == "Active" for e in events)
    event = events[0]
    updated = ms.partner_center.update_fraud_events(
        subscription_id=event.subscription_id, event_ids=[event.event_id], status="Resolved",
        resolved_reason="Fraud", request_id=rid(),
    )
    assert [e.status for e in updated if e.event_id == event.event_id] == ["Resolved"]


def test_admin_agent_without_mfa_is_refused_with_a_typed_error(emulator, make_client, settings):
    settings.MS_ADMIN_AGENT_REFRESH_TOKEN = emulator.admin_agent_refresh_token(mfa=False)
    with pytest.raises(errors.MfaClaimMissing):
        make_client().partner_center.list_fraud_events()


def test_gdap_relationship_lifecycle(ms, emulator):
    organization = OrganizationFactory()
    customer = new_customer(ms, organization)
    relationship = ms.graph.create_gdap_relationship(
        organization=organization, request_id=rid(), display_name=f"portal-{uuid.uuid4().hex[:8]}",
        customer_tenant_id=customer.id, customer_display_name=customer.company_name,
        role_ids=[LICENSE_ADMIN, DIRECTORY_READERS], duration="P730D",
    )
    assert relationship.status == "created" and relationship.customer_tenant_id == customer.id
    ms.graph.lock_gdap_for_approval(relationship_id=relationship.id, request_id=rid())
    assert ms.graph.get_gdap_relationship(relationship_id=relationship.id).status == "approvalPending"
    emulator.approve_gdap(relationship.id)
    assert ms.graph.get_gdap_relationship(relationship_id=relationship.id).status == "active"
    assignment = ms.graph.create_gdap_access_assignment(
        relationship_id=relationship.id, security_group_id=str(uuid.uuid4()), role_ids=[LICENSE_ADMIN],
        request_id=rid(),
    )
    assert assignment.role_ids == [LICENSE_ADMIN]
    listed = ms.graph.list_gdap_access_assignments(relationship_id=relationship.id)
    assert [a.id for a in listed] == [assignment.id]
    assert Disclosure.objects.filter(organization=organization, operation="graph.gdap.create",
                                     categories=["tenant"]).exists()


def test_unbilled_usage_export_streams_json_lines(ms, sleeps):
    customer = new_customer(ms, OrganizationFactory())
    buy(ms, customer.id, quantity=3)
    operation_url = ms.graph.request_unbilled_usage_export(billing_period="current")
    manifest = ms.graph.wait_for_export(operation_url=operation_url, poll_seconds=10)
    assert sleeps == [10]  # the emulator reports "running" once before it succeeds
    rows = ms.graph.iter_export_rows(manifest)
    first = next(rows)
    assert {"CustomerId", "SubscriptionId", "BillingPreTaxTotal"} <= set(first)
    # The rest of every blob streams too, each line a whole usage record.
    assert all({"CustomerId", "SubscriptionId", "BillingPreTaxTotal"} <= set(row) for row in rows)


def test_unbilled_line_items_page_through_partner_center(ms):
    customer = new_customer(ms, OrganizationFactory())
    buy(ms, customer.id, quantity=2)
    items = list(ms.partner_center.iter_unbilled_line_items(page_size=1))
    assert items and all("customerId" in i or "CustomerId" in i for i in items)
