"""The customer's Azure fraud cases page: its own cases only, to the roles that may see the activity log, with
the evidence a customer may see and never the staff's notes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from accounts.tests.helpers import verified_client
from core.tenancy import tenant_context
from licensing.holds import ProvisioningHeld, require_no_provisioning_hold
from licensing.tests.core.factories import SubscriptionFactory
from security.models import FraudCase

pytestmark = pytest.mark.django_db


def _case(org, **fields) -> FraudCase:
    values = {
        "source": FraudCase.Source.PARTNER_CENTER,
        "signal": "NetworkConnectionsToCryptoMiningPools",
        "dedupe_key": f"pc:{uuid.uuid4()}",
        "azure_subscription_id": str(uuid.uuid4()),
        "score": 95,
        "evidence": {"eventId": "evt-1", "severity": "High", "resourceName": "vm-miner-01",
                     "plan_lookup_failed": "HTTP 503 from partner.microsoft.com, correlation 8c2f"},
        "action": FraudCase.Action.BLOCK_PROVISIONING,
        "blocks_provisioning": True,
        **fields,
    }
    with tenant_context(org):
        return FraudCase.objects.create(organization=org, **values)


def _list(org):
    return reverse("security:fraud_cases", kwargs={"org_slug": org.slug})


def _detail(org, case):
    return reverse("security:fraud_case", kwargs={"org_slug": org.slug, "case_id": case.pk})


@pytest.fixture
def owner():
    membership = MembershipFactory(role=Role.OWNER)
    return membership.organization, verified_client(Client(), membership.user)


def test_the_list_shows_the_cases_and_what_was_done(owner):
    org, client = owner
    with tenant_context(org):
        plan = SubscriptionFactory(organization=org, friendly_name="Azure plan (production)")
    _case(org, subscription=plan, action=FraudCase.Action.SUSPEND, suspension_requested_at=timezone.now())
    _case(org, source=FraudCase.Source.USAGE_ANOMALY, signal="new_region", score=40, action=FraudCase.Action.ALERT,
          blocks_provisioning=False, status=FraudCase.Status.RESOLVED_IGNORE, resolved_at=timezone.now())
    page = client.get(_list(org))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Network connections to crypto-mining pools" in text and "Azure plan (production)" in text
    assert "Azure subscription suspended, new purchases held" in text
    assert "Resources in a region not used before" in text and "Alert only" in text
    assert "Resolved: not fraud" in text
    # The open case holds purchases: the page says so, with the same reason a refused purchase gives.
    assert "New purchases are on hold" in text


def test_the_status_filter_and_pagination(owner):
    org, client = owner
    for _ in range(26):
        _case(org)
    closed = _case(org, status=FraudCase.Status.RESOLVED_FRAUD, resolved_at=timezone.now(), blocks_provisioning=False)
    first = client.get(_list(org))
    assert "Showing 1&ndash;25 of 27" in first.content.decode()
    second = client.get(_list(org), {"page": 2})
    assert "Showing 26&ndash;27 of 27" in second.content.decode()
    resolved = client.get(_list(org), {"state": "resolved_fraud"}).content.decode()
    assert "Showing 1&ndash;1 of 1" in resolved and _detail(org, closed) in resolved
    # A status that does not exist is ignored, not an error.
    assert "of 27" in client.get(_list(org), {"state": "<script>"}).content.decode()
    nothing = client.get(_list(org), {"state": "resolved_ignore"}).content.decode()
    assert "No matches" in nothing


def test_an_organisation_without_cases_sees_the_empty_state_and_no_hold(owner):
    org, client = owner
    _case(OrganizationFactory())  # another organisation's open case holds nothing here
    text = client.get(_list(org)).content.decode()
    assert "No fraud cases" in text and "New purchases are on hold" not in text


def test_the_detail_shows_customer_evidence_and_nothing_staff_internal(owner):
    org, client = owner
    staff = UserFactory(is_staff=True, full_name="Rowan Responder")
    case = _case(org, status=FraudCase.Status.RESOLVED_FRAUD, blocks_provisioning=False,
                 resolved_at=datetime(2026, 3, 2, 10, tzinfo=UTC), resolved_by=staff,
                 resolution_note="Customer's admin reused a leaked password; internal ticket SEC-4411")
    page = client.get(_detail(org, case))
    assert page.status_code == 200
    text = page.content.decode()
    assert "vm-miner-01" in text and "evt-1" in text and "Severity" in text
    assert "confirmed this activity as fraud" in text
    for internal in ("SEC-4411", "leaked password", "Rowan Responder", "correlation 8c2f", case.dedupe_key):
        assert internal not in text


def test_an_open_case_that_holds_purchases_says_what_to_do(owner):
    org, client = owner
    case = _case(org)
    text = client.get(_detail(org, case)).content.decode()
    assert "new purchases, order approvals and seat increases are refused" in text
    assert "contact support" in text and str(case.pk) in text
    # The refusal a purchase meets points at the page.
    with tenant_context(org), pytest.raises(ProvisioningHeld) as refused:
        require_no_provisioning_hold(org)
    assert _list(org) in str(refused.value)


def test_another_organisations_case_is_not_found(owner):
    org, client = owner
    theirs = _case(OrganizationFactory())
    assert client.get(_detail(org, theirs)).status_code == 404
    assert client.get(reverse("security:fraud_case", kwargs={"org_slug": org.slug,
                                                             "case_id": uuid.uuid4()})).status_code == 404
    # Nor through their slug: not a member there.
    assert client.get(_list(theirs.organization)).status_code == 404


@pytest.mark.parametrize(("role", "status"), [
    (Role.OWNER, 200), (Role.LICENSE_ADMIN, 200), (Role.BILLING_ADMIN, 200), (Role.VIEWER, 403),
])
def test_who_may_see_the_cases(role, status):
    membership = MembershipFactory(role=role)
    case = _case(membership.organization)
    client = verified_client(Client(), membership.user)
    assert client.get(_list(membership.organization)).status_code == status
    assert client.get(_detail(membership.organization, case)).status_code == status


def test_the_activity_log_links_to_the_cases(owner):
    org, client = owner
    text = client.get(reverse("security:activity", kwargs={"org_slug": org.slug})).content.decode()
    assert _list(org) in text
