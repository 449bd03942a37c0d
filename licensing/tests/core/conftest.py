"""Fixtures for the licensing core tests: an emulator-backed organisation linked through real services."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from accounts.tests.factories import MembershipFactory
from licensing import demo
from licensing.microsoft.client import reset_default_client
from licensing.models import Price
from licensing.services import catalog as catalog_services


@pytest.fixture
def control(emulator, settings):
    settings.MSEMULATOR_URL = emulator.base_url
    settings.MS_ADMIN_AGENT_REFRESH_TOKEN = emulator.admin_agent_refresh_token()
    reset_default_client()
    emulator.update_settings(sandboxLimits=False)
    catalog_services.catalog_sync(country="US")
    return demo.EmulatorControl(emulator.base_url, emulator.ca_path)


@pytest.fixture
def owner():
    return MembershipFactory(role=Role.OWNER)


@pytest.fixture
def linked(control, owner):
    organization = owner.organization
    demo.link_demo_tenant(organization=organization, actor=owner.user, control=control)
    return owner


@pytest.fixture
def ready(linked):
    """Linked, agreement accepted: ready to buy."""
    demo.accept_demo_agreement(organization=linked.organization, user=linked.user)
    return linked


def offer(product_id: str = "CFQ7TTC0LCHC", term: str = "P1Y", cycle: str = "monthly") -> Price:
    return Price.objects.get(availability__sku__product__product_id=product_id, term_duration=term,
                             billing_cycle=cycle)
