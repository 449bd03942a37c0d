"""Azure fraud end to end against the emulator: poll, cases, policy, hold, suspension, resolution."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client, TestCase
from django.urls import reverse

from accounts.models import MicrosoftTenant, StaffRole
from accounts.roles import Role
from accounts.tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    StaffGrantFactory,
    TOTPDeviceFactory,
    UserFactory,
)
from accounts.tests.helpers import verified_client
from core.models import AuditEvent
from core.tenancy import tenant_context
from licensing.holds import ProvisioningHeld
from licensing.microsoft.client import default_client
from licensing.models import ProvisioningOperation, Subscription
from licensing.services.subscriptions import subscription_change_quantity
from licensing.tests.core.factories import SubscriptionFactory
from msemulator.seed import FABRIKAM_ID
from security import fraud
from security.models import AzureUsageDay, FraudCase

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

AZURE_PLAN = "DZH318Z0BPS6:0001:DZH318Z0BXWC"


@pytest.fixture
def fabrikam(emulator, settings):
    settings.MS_ADMIN_AGENT_REFRESH_TOKEN = emulator.admin_agent_refresh_token()
    settings.SECURITY_ALERT_EMAILS = ("soc@reseller.example",)
    org = OrganizationFactory()
    owner = MembershipFactory(organization=org, role=Role.OWNER).user
    remote = next(s for s in default_client().partner_center.iter_subscriptions(customer_id=FABRIKAM_ID)
                  if s.offer_id.startswith("DZH318Z0BPS6"))
    with tenant_context(org):
        MicrosoftTenant.objects.create(organization=org, tenant_id=uuid.uuid4(), partner_customer_id=FABRIKAM_ID,
                                       relationship_status=MicrosoftTenant.RelationshipStatus.ACTIVE)
        plan = SubscriptionFactory(organization=org, ms_subscription_id=remote.id, catalog_item_id=AZURE_PLAN,
                                   quantity=1)
        seats = SubscriptionFactory(organization=org, quantity=5)
    azure_id = default_client().partner_center.list_azure_entitlements(customer_id=FABRIKAM_ID,
                                                                       subscription_id=remote.id)[0]
    return org, owner, plan, seats, azure_id


def _poll():
    with TestCase.captureOnCommitCallbacks(execute=True):
        return fraud.fraud_events_poll()


def test_polling_opens_a_case_per_event_and_the_policy_responds(fabrikam):
    org, owner, plan, seats, azure_id = fabrikam
    assert _poll() == 2
    assert _poll() == 0  # each event opens its case once
    with tenant_context(org):
        cases = {c.signal: c for c in FraudCase.objects.all()}
        mining, anomaly = cases["NetworkConnectionsToCryptoMiningPools"], cases["UsageAnomalyDetection"]
        assert mining.azure_subscription_id == azure_id and mining.subscription == plan
        assert (mining.score, mining.action, mining.blocks_provisioning) == (95, "suspend", True)
        assert (anomaly.score, anomaly.action) == (60, "block_provisioning")
        assert mining.evidence["eventType"] == "NetworkConnectionsToCryptoMiningPools"
        # Suspended through Partner Center, over the outbox.
        operation = ProvisioningOperation.objects.get(kind="subscription.suspend")
        assert operation.status == ProvisioningOperation.Status.SUCCEEDED, operation.last_error
        assert Subscription.objects.get(pk=plan.pk).status == Subscription.Status.SUSPENDED
        # New provisioning is refused with the reason; nothing changes.
        with pytest.raises(ProvisioningHeld, match="on hold while our security team reviews"):
            subscription_change_quantity(subscription=seats, actor=fraud.Actor.user(owner), quantity=8)
        assert Subscription.objects.get(pk=seats.pk).quantity == 5
    remote = default_client().partner_center.get_subscription(customer_id=FABRIKAM_ID,
                                                              subscription_id=plan.ms_subscription_id)
    assert remote.status == "suspended"
    assert {m.to[0] for m in mail.outbox} >= {owner.email, "soc@reseller.example"}
    actions = set(AuditEvent.unscoped_objects.filter(organization=org).values_list("action", flat=True))
    assert {"security.fraud_case_opened", "security.fraud_suspension_requested"} <= actions


def test_resolving_tells_microsoft_with_the_documented_body(fabrikam, emulator):
    org, owner, _plan, seats, _azure_id = fabrikam
    _poll()
    staff = UserFactory(is_staff=True)
    with tenant_context(org):
        mining = FraudCase.objects.get(signal="NetworkConnectionsToCryptoMiningPools")
        anomaly = FraudCase.objects.get(signal="UsageAnomalyDetection")
        with TestCase.captureOnCommitCallbacks(execute=True):
            fraud.fraud_case_resolve(case=mining, user=staff, fraud=True, note="Mining confirmed")
        with TestCase.captureOnCommitCallbacks(execute=True):
            fraud.fraud_case_resolve(case=anomaly, user=staff, fraud=False)
        assert FraudCase.objects.get(pk=mining.pk).status == "resolved_fraud"
        assert not FraudCase.objects.filter(blocks_provisioning=True, status="open").exists()
    bodies = [json.loads(r["body"]) for r in emulator.requests_log(method="POST", path="*/fraudEvents/subscription/*")]
    assert bodies == [
        {"EventIds": mining.ms_event_ids, "EventStatus": "Resolved", "ResolvedReason": "Fraud"},
        {"EventIds": anomaly.ms_event_ids, "EventStatus": "Resolved", "ResolvedReason": "Ignore"},
    ]
    resolved = {e.event_id: e.raw["resolvedReason"]
                for e in default_client().partner_center.list_fraud_events(status="Resolved")}
    assert resolved == {mining.ms_event_ids[0]: "Fraud", anomaly.ms_event_ids[0]: "Ignore"}
    with tenant_context(org):
        subscription_change_quantity(subscription=seats, actor=fraud.Actor.user(owner), quantity=8)  # hold released


def _rows(day, spend, *, region="eastus", sku="D2s v5", customer=FABRIKAM_ID, azure_id=""):
    return {"CustomerId": customer, "SubscriptionId": azure_id, "UsageDate": f"{day.isoformat()}T00:00:00Z",
            "BillingPreTaxTotal": spend, "BillingCurrency": "USD", "ResourceLocation": region,
            "MeterCategory": "Virtual Machines", "SkuName": sku}


def test_usage_anomalies_open_cases_and_a_responder_suspends_from_the_admin(fabrikam):
    org, _owner, plan, _seats, azure_id = fabrikam
    start = date(2026, 11, 1)
    normal = [_rows(start + timedelta(days=n), 20 + n % 3, azure_id=azure_id) for n in range(10)]
    odd_day = start + timedelta(days=10)
    odd = [_rows(odd_day, 25, region="brazilsouth", azure_id=azure_id)]
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert fraud.azure_usage_scan(rows=normal + odd) == 1
    with tenant_context(org):
        assert AzureUsageDay.objects.count() == 11
        case = FraudCase.objects.get()
        assert (case.signal, case.action, case.blocks_provisioning) == ("new_region", "alert", False)
        assert case.evidence["regions"] == ["brazilsouth"]
    staff = UserFactory(is_staff=True, is_superuser=True)
    TOTPDeviceFactory(user=staff)
    client = verified_client(Client(), staff)
    changelist = reverse("admin:security_fraudcase_changelist")
    # No grant, no cases, superuser or not (decision 021); a security responder's grant shows them.
    assert "new_region" not in client.get(changelist + "?status__exact=open").content.decode()
    StaffGrantFactory(staff=staff, organization=org, roles=[StaffRole.SECURITY_RESPONDER])
    assert "new_region" in client.get(changelist + "?status__exact=open").content.decode()
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(changelist, {"action": "suspend_subscription", "_selected_action": [str(case.pk)]})
    assert response.status_code == 302
    with tenant_context(org):
        case.refresh_from_db()
        assert case.action == "suspend" and case.suspension_requested_at and case.blocks_provisioning
        assert Subscription.objects.get(pk=plan.pk).status == Subscription.Status.SUSPENDED
    assert AuditEvent.unscoped_objects.filter(action="security.fraud_suspension_requested",
                                              actor_id=str(staff.pk)).exists()


def test_a_spend_spike_with_gpu_machines_suspends_automatically(fabrikam):
    org, _owner, plan, _seats, azure_id = fabrikam
    start = date(2026, 11, 1)
    rows = [_rows(start + timedelta(days=n), 30, azure_id=azure_id) for n in range(8)]
    rows.append(_rows(start + timedelta(days=8), Decimal("900.00"), sku="NC24ads A100 v4", azure_id=azure_id))
    rows.append(_rows(start + timedelta(days=8), 10, sku="not a size", azure_id=azure_id))
    rows.append({"CustomerId": "unknown-customer", "SubscriptionId": "x", "UsageDate": "2026-11-09",
                 "BillingPreTaxTotal": 1})
    rows.append({"UsageDate": "garbage"})
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert fraud.azure_usage_scan(rows=rows) == 2
    with tenant_context(org):
        cases = {c.signal: c for c in FraudCase.objects.all()}
        assert set(cases) == {"spend_spike", "gpu_vm_family"}
        assert cases["spend_spike"].evidence["ratio"] == "30.3" and cases["spend_spike"].action == "suspend"
        assert cases["gpu_vm_family"].evidence["sizes"] == ["NC24"]
        assert Subscription.objects.get(pk=plan.pk).status == Subscription.Status.SUSPENDED


def test_a_new_event_reported_later_opens_its_own_case(fabrikam, emulator):
    org, *_, azure_id = fabrikam
    _poll()
    with tenant_context(org):
        for case in FraudCase.objects.all():
            with TestCase.captureOnCommitCallbacks(execute=True):
                fraud.fraud_case_resolve(case=case, user=UserFactory(is_staff=True), fraud=False)
    event = emulator.add_fraud_event(azure_id, event_type="VirtualMachineDeploymentAnomaly")
    assert _poll() == 1
    with tenant_context(org):
        case = FraudCase.objects.get(status="open")
        assert case.ms_event_ids == [event["eventId"]] and case.action == "block_provisioning"
