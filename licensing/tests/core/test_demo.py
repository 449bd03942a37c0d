"""The demo seed builds a living organisation through the real services against the emulator."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.roles import Role
from accounts.tests.factories import MembershipFactory
from core.tenancy import tenant_context
from licensing import demo
from licensing.models import ProvisioningOperation, Subscription
from licensing.nce import is_open

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]


def test_seed_licensing_demo(emulator, settings):
    settings.MSEMULATOR_URL = emulator.base_url
    settings.MS_ADMIN_AGENT_REFRESH_TOKEN = ""
    member = MembershipFactory(role=Role.OWNER)
    org = member.organization
    result = demo.seed_licensing_demo(organization=org, actor=member.user, emulator_url=emulator.base_url,
                                      ca_bundle=emulator.ca_path)
    with tenant_context(org):
        subs = {str(s.pk): s for s in Subscription.objects.for_org(org)}
        assert not ProvisioningOperation.objects.exclude(status=ProvisioningOperation.Status.SUCCEEDED).exists()
    assert result["subscriptions"] == len(subs) == 5  # three bought now, two imported from the tenant
    now = timezone.now()
    assert is_open(subs[result["in_window"]].cancellation_allowed_until, now)
    assert (subs[result["renewing"]].commitment_end - now).days <= 31
    assert subs[result["suspended"]].status == Subscription.Status.SUSPENDED
