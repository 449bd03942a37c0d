"""The overview shows what a license admin checks first: seats used and free per license, monthly spend
(the Subscriptions page's cost column, summed), renewals in the next 30 days, anything failed or waiting,
inactive licenses worth reclaiming, and a link to buy where a license is full."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, LicenseAssignment, ProvisioningOperation, Sku, TenantSku
from licensing.tests.core.factories import ProductFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def licensed(organization):
    now = timezone.now()
    with tenant_context(organization):
        full = TenantSku.objects.create(organization=organization, sku_id=uuid.uuid4(), display_name="Business Premium",
                                        purchased=3)
        TenantSku.objects.create(organization=organization, sku_id=uuid.uuid4(), display_name="Exchange Plan 1",
                                         purchased=50)
        for n in range(3):
            user = DirectoryUser.objects.create(
                organization=organization, graph_id=uuid.uuid4(), display_name=f"U{n}",
                user_principal_name=f"u{n}@x.example", usage_location="US", has_usage_location=True,
                last_sign_in_at=now - timedelta(days=200 if n == 0 else 1))
            DirectoryUser.objects.for_org(organization).filter(pk=user.pk).update(created_at=now - timedelta(days=400))
            LicenseAssignment.objects.create(organization=organization, user=user, sku=full, state="assigned")
        sku = Sku.objects.create(product=ProductFactory(), sku_id="0001", title="Business Premium",
                                 provisioning_id=str(full.sku_id))
        SubscriptionFactory(organization=organization, sku=sku, quantity=3, unit_price=Decimal("22.00"),
                            billing_cycle="monthly", commitment_end=now + timedelta(days=10))
        SubscriptionFactory(organization=organization, quantity=50, unit_price=Decimal("48.00"), billing_cycle="annual",
                            term_duration="P1Y", commitment_end=now + timedelta(days=200))
        ProvisioningOperation.objects.create(organization=organization, kind="license.apply_changes",
                                             status=ProvisioningOperation.Status.FAILED, finished_at=now)


@pytest.mark.usefixtures("licensed")
def test_overview_shows_the_license_admins_first_checks(owner, organization):
    client, _ = owner
    page = client.get(reverse("dashboard:overview", kwargs={"org_slug": organization.slug})).content.decode()
    spend = re.search(r'id="monthly-spend".*?<p class="stat-value">([^<]+)</p>', page, re.S).group(1)
    assert spend == "USD 266.00"  # 3 x 22.00 monthly + 50 x 48.00 / 12
    listing = client.get(reverse("licensing:subscriptions", kwargs={"org_slug": organization.slug})).content.decode()
    costs = [Decimal(c) for c in re.findall(r'class="num monthly-cost[^"]*">USD ([\d.]+)<', listing)]
    assert sum(costs) == Decimal("266.00")
    renewals = re.search(r'id="renewals-soon".*?<p class="stat-value">(\d+)</p>', page, re.S).group(1)
    assert renewals == "1"
    assert re.search(r'id="attention".*?1 failed', page, re.S)
    assert re.search(r'id="reclaim".*?<p class="stat-value">1</p>', page, re.S)
    seats = re.search(r'id="seats-per-license".*?</section>', page, re.S).group(0)
    assert re.search(r"Business Premium</th><td class=\"num\">3</td><td class=\"num\">0</td><td class=\"num\">3</td>",
                     seats)
    buy = re.search(r'class="btn btn-primary btn-sm buy-suggestion" href="([^"]+)">Buy (\d+) more', seats)
    assert buy and buy.group(2) == "1"
    assert "/subscriptions/" in buy.group(1) and "quantity=4" in buy.group(1)
    assert "Exchange Plan 1: " not in seats  # plenty free: no suggestion


@pytest.mark.usefixtures("licensed")
def test_a_viewer_sees_the_figures_but_no_buy_link(member_client, organization):
    client, _ = member_client(Role.VIEWER)
    page = client.get(reverse("dashboard:overview", kwargs={"org_slug": organization.slug})).content.decode()
    assert 'id="seats-per-license"' in page and "buy-suggestion" not in page
