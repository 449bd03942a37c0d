"""The organisation's sign-in networks page: owners set the allow-list, nobody locks themselves out."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from accounts.tests.factories import MembershipFactory
from accounts.tests.helpers import verified_client
from core.models import AuditEvent
from core.tenancy import tenant_context
from security.models import SignInPolicy

pytestmark = pytest.mark.django_db


def _url(org):
    return reverse("security:sign_in_networks", kwargs={"org_slug": org.slug})


def test_an_owner_sets_the_list_and_cannot_shut_themselves_out():
    owner = MembershipFactory(role=Role.OWNER)
    org = owner.organization
    client = verified_client(Client(), owner.user)
    page = client.get(_url(org), REMOTE_ADDR="203.0.113.9")
    assert page.status_code == 200 and b"203.0.113.9" in page.content
    refused = client.post(_url(org), {"networks": "198.51.100.0/24"}, REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 400 and b"would sign you out for good" in refused.content
    bad = client.post(_url(org), {"networks": "203.0.113.0/24\noffice wifi"}, REMOTE_ADDR="203.0.113.9")
    assert bad.status_code == 400 and b"is not an IP network" in bad.content
    with tenant_context(org):
        assert not SignInPolicy.objects.exists()  # nothing half-written
    saved = client.post(_url(org), {"networks": "203.0.113.7/24\n198.51.100.0/24\n"}, REMOTE_ADDR="203.0.113.9")
    assert saved.status_code == 302
    with tenant_context(org):
        assert SignInPolicy.objects.get().allowed_networks == ["203.0.113.0/24", "198.51.100.0/24"]
        assert AuditEvent.objects.filter(action="security.sign_in_networks_changed").exists()
    assert client.post(_url(org), {"networks": ""}, REMOTE_ADDR="192.0.2.1").status_code == 302  # empty: anywhere


def test_other_roles_read_it_and_a_stale_second_factor_is_asked_again():
    viewer = MembershipFactory(role=Role.LICENSE_ADMIN)
    client = verified_client(Client(), viewer.user)
    assert b"No restriction" in client.get(_url(viewer.organization)).content
    assert client.post(_url(viewer.organization), {"networks": ""}).status_code == 403
    owner = MembershipFactory(role=Role.OWNER, organization=viewer.organization)
    stale = verified_client(Client(), owner.user, recent_mfa=False)
    response = stale.post(_url(owner.organization), {"networks": ""})
    assert response.status_code == 302 and "reason=sensitive" in response.url
    outsider = verified_client(Client(), MembershipFactory().user)
    assert outsider.get(_url(viewer.organization)).status_code == 404
