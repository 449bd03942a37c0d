"""The customer's Azure fraud cases in the browser: from the activity log to the list, filtered, and to a case.
The accessibility gate checks every page reached, the empty state included."""

import uuid

import pytest
from playwright.sync_api import expect

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_from_the_activity_log_to_a_case(page, make_member):
    from core.tenancy import tenant_context
    from security.models import FraudCase

    member = make_member(role="owner")
    org = member.organization
    slug = org.slug
    sign_in(page, email=member.email, app=member.app, path=f"/o/{slug}/security/fraud-cases/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Azure fraud cases")
    expect(page.get_by_text("No fraud cases")).to_be_visible()

    with tenant_context(org):
        FraudCase.objects.create(
            organization=org, source="usage_anomaly", signal="gpu_vm_family", dedupe_key=f"usage:{uuid.uuid4()}",
            azure_subscription_id=str(uuid.uuid4()), score=75, action="block_provisioning", blocks_provisioning=True,
            evidence={"day": "2026-12-06", "sizes": ["Standard_NC24ads_A100_v4"]})
        FraudCase.objects.create(
            organization=org, source="usage_anomaly", signal="new_region", dedupe_key=f"usage:{uuid.uuid4()}",
            azure_subscription_id=str(uuid.uuid4()), score=40, status="resolved_ignore", action="alert",
            evidence={"day": "2026-12-01", "regions": ["brazilsouth"]})

    page.goto(f"/o/{slug}/security/activity/")
    page.get_by_role("link", name="Azure fraud cases").click()
    expect(page.get_by_role("heading", name="New purchases are on hold")).to_be_visible()
    expect(page.get_by_role("link", name="GPU virtual machines appeared")).to_be_visible()
    page.get_by_label("Status").select_option("open")
    expect(page.get_by_role("link", name="Resources in a region not used before")).to_have_count(0)
    page.get_by_role("link", name="GPU virtual machines appeared").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("GPU virtual machines appeared")
    expect(page.get_by_text("Standard_NC24ads_A100_v4")).to_be_visible()
    expect(page.get_by_role("heading", name="What to do")).to_be_visible()
