"""The license picker says how many seats are free, and offers the chosen license's service plans by the
names Microsoft's admin center uses (from Microsoft's product names file, read by the catalog sync)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.roles import Role
from accounts.tests.factories import MembershipFactory
from accounts.tests.helpers import verified_client
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, ServicePlan, TenantSku
from licensing.selectors.usage import seats_in_use, service_plan_choices
from licensing.services.catalog import service_plans_sync

from . import directory_helpers
from .directory_helpers import premium, run_sync

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

graph = directory_helpers.graph
linked_org = directory_helpers.linked_org
EXCHANGE_PLAN_1 = "9aaf7827-d63c-4b61-89c3-182f06f82e5c"  # EXCHANGE_S_STANDARD


def test_the_catalog_sync_reads_microsofts_plan_names(linked_org, emulator):
    count = service_plans_sync()
    assert count == ServicePlan.objects.count() > 50
    assert service_plans_sync() == count  # idempotent
    plan = ServicePlan.objects.get(service_plan_id=EXCHANGE_PLAN_1)
    assert plan.name == "EXCHANGE_S_STANDARD" and plan.friendly_name.lower() == "exchange online (plan 1)"


def test_picker_shows_free_seats_and_only_the_chosen_licenses_plans_by_name(linked_org, emulator, client):
    run_sync(linked_org)
    service_plans_sync()
    pool = premium(linked_org)
    with tenant_context(linked_org):
        free = pool.purchased - seats_in_use(linked_org, pool)
        other = TenantSku.objects.for_org(linked_org).exclude(pk=pool.pk).exclude(service_plans=[]).first()
        user = DirectoryUser.objects.for_org(linked_org).first()
    choices = dict(service_plan_choices(pool))
    assert set(choices) == {str(p["id"]).lower() for p in pool.service_plans}
    assert "EXCHANGE_S_STANDARD" not in choices.values()
    assert any(name.lower() == "exchange online (plan 1)" for name in choices.values())

    browser = verified_client(client, MembershipFactory(organization=linked_org, role=Role.LICENSE_ADMIN).user)
    url = reverse("licensing:directory_user", kwargs={"org_slug": linked_org.slug, "pk": user.pk})
    page = browser.get(url, {"sku": str(pool.pk)}).content.decode()
    assert f">{pool.label}, {free} of {pool.purchased} free</option>" in page
    offered = set(re.findall(r'name="disabled_plans" value="([^"]+)"', page))
    assert offered == set(choices)
    if other is not None:
        other_page = browser.get(url, {"sku": str(other.pk)}).content.decode()
        assert set(re.findall(r'name="disabled_plans" value="([^"]+)"', other_page)) == {
            str(p["id"]).lower() for p in other.service_plans}
