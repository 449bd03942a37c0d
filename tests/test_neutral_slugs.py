"""Neutral organisation slugs (decision 041): existing organisations are re-slugged by accounts' migration
0015, their old links redirect their members only, and the portal's stored links follow."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import ORGANIZATION_SLUG_INDEX, Organization, StaffGrant, StaffRole
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from accounts.tests.helpers import verified_client
from core.crypto import blind_index
from core.tenancy import tenant_context
from licensing.models import Notification

pytestmark = pytest.mark.django_db

migration = importlib.import_module("accounts.migrations.0015_neutral_organization_slugs")


def _migrate():
    editor = SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name)
    migration.neutral_slugs(apps, editor)


def test_the_migration_replaces_name_slugs_and_rewrites_stored_links():
    contoso = OrganizationFactory(slug="contoso-trading-ltd", legal_name="Contoso Trading Ltd")
    other = OrganizationFactory(slug="contoso-trading-ltd-2", legal_name="Contoso Trading Ltd")
    demo = OrganizationFactory(slug="fabrikam")
    neutral = OrganizationFactory(slug="org-bcdfghjk")
    owner = UserFactory()
    with tenant_context(contoso):
        note = Notification.objects.create(organization=contoso, recipient=owner, kind="assignment", title="Seats",
                                           link_url="/o/contoso-trading-ltd/licenses/?pool=1", dedupe_key="n1")
    with tenant_context(other):
        theirs = Notification.objects.create(organization=other, recipient=owner, kind="assignment", title="Seats",
                                             link_url="/o/contoso-trading-ltd-2/licenses/", dedupe_key="n2")

    _migrate()

    contoso.refresh_from_db()
    other.refresh_from_db()
    assert migration.NEUTRAL.match(contoso.slug) and migration.NEUTRAL.match(other.slug)
    assert contoso.slug != other.slug
    assert contoso.previous_slug_index == blind_index(ORGANIZATION_SLUG_INDEX, "contoso-trading-ltd")
    assert other.previous_slug_index == blind_index(ORGANIZATION_SLUG_INDEX, "contoso-trading-ltd-2")
    # The demo's fixed slug and slugs already neutral stay; nothing is recorded for them.
    assert Organization.objects.get(pk=demo.pk).slug == "fabrikam"
    assert Organization.objects.get(pk=neutral.pk).slug == "org-bcdfghjk"
    assert Organization.objects.get(pk=neutral.pk).previous_slug_index is None
    with tenant_context(contoso):
        assert Notification.objects.get(pk=note.pk).link_url == f"/o/{contoso.slug}/licenses/?pool=1"
    with tenant_context(other):
        assert Notification.objects.get(pk=theirs.pk).link_url == f"/o/{other.slug}/licenses/"

    _migrate()  # again: nothing left to change
    assert Organization.objects.get(pk=contoso.pk).slug == contoso.slug


def _retired(old: str) -> Organization:
    return OrganizationFactory(slug="org-mnpqrstv", previous_slug_index=blind_index(ORGANIZATION_SLUG_INDEX, old))


def test_an_old_link_redirects_a_member_to_the_same_page():
    organization = _retired("contoso-trading-ltd")
    member = MembershipFactory(organization=organization, role=Role.OWNER)
    client = verified_client(Client(), member.user)
    response = client.get("/o/contoso-trading-ltd/security/activity/?period=7d")
    assert response.status_code == 301
    assert response["Location"] == "/o/org-mnpqrstv/security/activity/?period=7d"
    assert client.get(response["Location"]).status_code == 200
    # A form posted to an old address is not replayed elsewhere.
    assert client.post("/o/contoso-trading-ltd/security/sign-in-networks/", {"networks": ""}).status_code == 404


def test_an_old_link_tells_nobody_else_anything():
    organization = _retired("contoso-trading-ltd")
    outsider = MembershipFactory(role=Role.OWNER)  # a member of another organisation only
    client = verified_client(Client(), outsider.user)
    assert client.get("/o/contoso-trading-ltd/security/activity/").status_code == 404
    assert client.get(f"/o/{organization.slug}/security/activity/").status_code == 404
    # A slug in use is never shadowed by another organisation's old one.
    current = OrganizationFactory(slug="contoso-trading")
    MembershipFactory(organization=current, user=outsider.user, role=Role.OWNER)
    MembershipFactory(organization=_retired_twin(), user=outsider.user, role=Role.OWNER)
    assert client.get("/o/contoso-trading/security/activity/").status_code == 200


def _retired_twin() -> Organization:
    return OrganizationFactory(slug="org-wxz23456", previous_slug_index=blind_index(ORGANIZATION_SLUG_INDEX,
                                                                                     "contoso-trading"))


def test_staff_may_name_the_organisation_by_its_old_slug_when_asking_for_access(client):
    organization = _retired("contoso-trading-ltd")
    staff = UserFactory(is_staff=True)
    staff_client = verified_client(client, staff)
    form = {"roles": [StaffRole.SUPPORT_READER], "hours": 8, "justification": "Ticket 7: invoices",
            "ticket_reference": "7", "organization": "contoso-trading-ltd"}
    assert staff_client.post(reverse("admin:accounts_staffgrant_request"), form).status_code == 302
    assert StaffGrant.objects.get().organization_id == organization.pk
