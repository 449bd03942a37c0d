"""Mass assignment: extra fields in a write change nothing privileged (ASVS 8.2.3, 15.3.3; auditor's A13).

Every write endpoint reads an explicit input serializer or form, so unknown fields are ignored by
construction. These tests hold that: each write is sent with its legitimate field plus the fields an
attacker would add (another organisation, staff and superuser flags, seat counts, prices, status,
ids, timestamps), by the most privileged customer role, and the rows are compared field by field.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.api_keys import api_key_create
from accounts.models import Membership, Organization, User
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from accounts.tests.helpers import verified_client
from billing.models import BillingProfile
from licensing.models import Subscription
from tests.tenant_objects import TenantWorld

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = TenantWorld()
    mine, theirs = OrganizationFactory(slug="mine"), OrganizationFactory(slug="theirs")
    owner = UserFactory()
    MembershipFactory(user=owner, organization=mine, role=Role.OWNER)
    objects = {"mine": world.build_all(mine), "theirs": world.build_all(theirs)}
    _, key = api_key_create(organization=mine, name="mass", role=Role.OWNER, expires_at=None, actor=owner)
    return {
        "mine": mine,
        "theirs": theirs,
        "owner": owner,
        "objects": objects,
        "api": Client(headers={"Authorization": f"Bearer {key}"}),
    }


def hostile(world, **legit) -> dict:
    theirs = world["theirs"]
    return {
        "organization": str(theirs.pk),
        "organization_id": str(theirs.pk),
        "org": theirs.slug,
        "is_staff": True,
        "is_superuser": True,
        "is_active": True,
        "email_verified_at": "2020-01-01T00:00:00Z",
        "role": Role.OWNER,
        "user": str(world["owner"].pk),
        "id": "00000000-0000-0000-0000-000000000001",
        "assigned_seats": 9999,
        "quantity_purchased": 9999,
        "unit_price": "0.01",
        "status": "active",
        "ms_subscription_id": "hijacked",
        "currency": "XXX",
        "tier": "platinum",
        "payment_terms_days": 365,
        "tax_exempt": True,
        "created_at": "2000-01-01T00:00:00Z",
        "slug": "hijacked",
        **legit,
    }


def snapshot(obj) -> dict:
    fresh = type(obj)._base_manager.get(pk=obj.pk)
    return {f.name: getattr(fresh, f.attname) for f in fresh._meta.concrete_fields if f.name != "updated_at"}


def test_subscription_patch_ignores_privileged_fields(world):
    subscription = world["objects"]["mine"]["licensing.Subscription"]
    before = snapshot(subscription)
    response = world["api"].patch(
        f"/api/v1/subscriptions/{subscription.pk}/", json.dumps(hostile(world)), content_type="application/json"
    )
    assert response.status_code in (200, 202, 400), response.content[:300]
    assert snapshot(subscription) == before
    assert Subscription._base_manager.filter(ms_subscription_id="hijacked").count() == 0


def test_member_patch_changes_the_role_and_nothing_else(world):
    member = MembershipFactory(organization=world["mine"], role=Role.VIEWER)
    user_before = snapshot(member.user)
    privileged_before = set(User.objects.filter(is_staff=True).values_list("pk", flat=True)), set(
        User.objects.filter(is_superuser=True).values_list("pk", flat=True))
    response = world["api"].patch(
        f"/api/v1/members/{member.pk}/",
        json.dumps(hostile(world, role=Role.LICENSE_ADMIN)),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content[:300]
    member = Membership._base_manager.get(pk=member.pk)
    assert member.role == Role.LICENSE_ADMIN and member.organization_id == world["mine"].pk
    assert snapshot(member.user) == user_before
    # The world holds staff of its own (a staff grant's holder): nobody else may have become staff.
    assert (set(User.objects.filter(is_staff=True).values_list("pk", flat=True)),
            set(User.objects.filter(is_superuser=True).values_list("pk", flat=True))) == privileged_before


def test_billing_profile_patch_changes_contacts_only(world):
    profile = BillingProfile._base_manager.get(organization=world["mine"])
    before = snapshot(profile)
    contacts = [{"name": "Accounts", "email": "ap@mine.example"}]
    response = world["api"].patch(
        "/api/v1/billing-profile/", json.dumps(hostile(world, contacts=contacts)), content_type="application/json"
    )
    assert response.status_code == 200, response.content[:300]
    after = snapshot(profile)
    assert after.pop("contacts") == contacts
    before.pop("contacts")
    assert after == before


def test_profile_and_organisation_forms_ignore_privileged_fields(world):
    owner, mine = world["owner"], world["mine"]
    browser = verified_client(Client(), owner)
    org_before, user_before = snapshot(mine), snapshot(owner)
    response = browser.post(reverse("accounts:profile"), hostile(world, full_name="New Name", job_title="CTO"))
    assert response.status_code == 302
    after = snapshot(owner)
    assert (after.pop("full_name"), after.pop("job_title")) == ("New Name", "CTO")
    user_before.pop("full_name"), user_before.pop("job_title")
    assert after == user_before
    settings_url = f"/o/{mine.slug}/team/settings/"
    response = browser.post(
        settings_url,
        hostile(
            world,
            legal_name="Mine Legal Ltd",
            business_name=mine.business_name,
            country=mine.country,
            time_zone=mine.time_zone,
        ),
    )
    assert response.status_code in (200, 302), response.content[:300]
    org_after = snapshot(mine)
    assert org_after.pop("legal_name") == "Mine Legal Ltd"
    org_before.pop("legal_name")
    for unchanged in ("slug", "status", "id"):
        assert org_after[unchanged] == org_before[unchanged]
    assert Organization.objects.filter(slug="hijacked").count() == 0
