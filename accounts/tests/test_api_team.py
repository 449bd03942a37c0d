"""Team API: roles, tenancy (another organisation's objects are 404), services behind every write."""

import pytest
from django.core import mail
from django.test import Client

from accounts.api_keys import api_key_create
from accounts.models import ApiKey, Invitation, Membership
from accounts.roles import Role
from accounts.tests.api_support import api_client_for, key_client, make_api_key, owner_of
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from core.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def owner_client(org):
    return api_client_for(org, Role.OWNER)


def _invite(client, email="new@example.com", role="viewer"):
    return client.post("/api/v1/invitations/", {"email": email, "role": role}, format="json")


# --- roles ------------------------------------------------------------------
def test_viewer_can_read_but_not_write(org):
    viewer = api_client_for(org, Role.VIEWER)
    assert viewer.get("/api/v1/members/").status_code == 200
    response = _invite(viewer)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    member = MembershipFactory(organization=org, role=Role.VIEWER)
    assert viewer.patch(f"/api/v1/members/{member.pk}/", {"role": "owner"}, format="json").status_code == 403
    assert viewer.delete(f"/api/v1/members/{member.pk}/").status_code == 403
    assert not Invitation.objects.for_org(org).exists()


def test_billing_admin_cannot_manage_keys_or_team(org):
    billing = api_client_for(org, Role.BILLING_ADMIN)
    key, _ = make_api_key(org, Role.VIEWER)
    assert billing.get("/api/v1/api-keys/").status_code == 403
    assert billing.delete(f"/api/v1/api-keys/{key.pk}/").status_code == 403
    assert billing.get("/api/v1/invitations/").status_code == 403
    assert billing.get("/api/v1/audit-events/").status_code == 200
    assert ApiKey.objects.for_org(org).get(pk=key.pk).revoked_at is None


def test_license_admin_lacks_payment_method_and_team_permissions():
    from accounts.roles import Perm, role_allows

    assert not role_allows(Role.LICENSE_ADMIN, Perm.PAYMENT_METHODS)
    assert not role_allows(Role.LICENSE_ADMIN, Perm.API_KEYS_MANAGE)
    assert role_allows(Role.BILLING_ADMIN, Perm.PAYMENT_METHODS)


def test_viewer_cannot_read_the_activity_log(org):
    assert api_client_for(org, Role.VIEWER).get("/api/v1/audit-events/").status_code == 403


# --- members ----------------------------------------------------------------
def test_members_list_shows_people_and_roles(org):
    owner = owner_of(org)
    client = verified_client(Client(), owner)
    response = client.get("/api/v1/members/", HTTP_X_ORGANIZATION=org.slug)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(row["user"]["email"], row["role"]) for row in rows] == [(owner.email, "owner")]


def test_change_role_and_remove_member(org, owner_client):
    owner_of(org)
    member = MembershipFactory(organization=org, role=Role.VIEWER)
    response = owner_client.patch(f"/api/v1/members/{member.pk}/", {"role": "license_admin"}, format="json")
    assert response.status_code == 200
    assert response.json()["role"] == "license_admin"
    assert owner_client.delete(f"/api/v1/members/{member.pk}/").status_code == 204
    assert not Membership.objects.filter(pk=member.pk).exists()
    actions = set(AuditEvent.objects.for_org(org).values_list("action", "actor_type"))
    assert ("membership.role_changed", "api_key") in actions
    assert ("membership.removed", "api_key") in actions


def test_last_owner_is_protected_over_the_api(org, owner_client):
    owner = Membership.objects.get(organization=org, user=owner_of(org))
    Membership.objects.filter(organization=org, role=Role.OWNER).exclude(pk=owner.pk).delete()
    response = owner_client.delete(f"/api/v1/members/{owner.pk}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_owner"
    response = owner_client.patch(f"/api/v1/members/{owner.pk}/", {"role": "viewer"}, format="json")
    assert response.status_code == 409


def test_api_key_cannot_grant_owner(org, owner_client):
    member = MembershipFactory(organization=org, role=Role.VIEWER)
    response = owner_client.patch(f"/api/v1/members/{member.pk}/", {"role": "owner"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "recent_mfa_required"
    assert _invite(owner_client, role="owner").status_code == 403


def test_session_needs_recent_mfa_to_invite_an_owner(org, django_capture_on_commit_callbacks):
    owner = owner_of(org)
    stale = verified_client(Client(), owner, recent_mfa=False)
    response = stale.post(
        "/api/v1/invitations/",
        {"email": "co-owner@example.com", "role": "owner"},
        content_type="application/json",
        HTTP_X_ORGANIZATION=org.slug,
    )
    assert response.status_code == 403
    fresh = verified_client(Client(), owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = fresh.post(
            "/api/v1/invitations/",
            {"email": "co-owner@example.com", "role": "owner"},
            content_type="application/json",
            HTTP_X_ORGANIZATION=org.slug,
        )
    assert response.status_code == 201
    assert mail.outbox[-1].to == ["co-owner@example.com"]


# --- invitations ------------------------------------------------------------
def test_invitation_create_list_resend_revoke(org, owner_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(owner_client)
    assert response.status_code == 201
    created = response.json()
    assert created["status"] == "pending" and created["email"] == "new@example.com"
    assert len(mail.outbox) == 1

    listed = owner_client.get("/api/v1/invitations/", {"status": "pending"}).json()["results"]
    assert [row["id"] for row in listed] == [created["id"]]
    assert owner_client.get("/api/v1/invitations/", {"status": "revoked"}).json()["results"] == []
    assert owner_client.get("/api/v1/invitations/", {"status": "bogus"}).status_code == 400

    with django_capture_on_commit_callbacks(execute=True):
        assert owner_client.post(f"/api/v1/invitations/{created['id']}/resend/").status_code == 200
    assert len(mail.outbox) == 2
    assert owner_client.delete(f"/api/v1/invitations/{created['id']}/").status_code == 204
    assert owner_client.get(f"/api/v1/invitations/{created['id']}/").json()["status"] == "revoked"


def test_duplicate_invitation_is_a_field_error(org, owner_client):
    _invite(owner_client)
    response = _invite(owner_client)
    assert response.status_code == 400
    assert "email" in response.json()["error"]["fields"]


# --- API keys ---------------------------------------------------------------
def test_api_keys_list_never_includes_secrets(org, owner_client):
    key, plaintext = make_api_key(org, Role.VIEWER)
    response = owner_client.get("/api/v1/api-keys/")
    assert response.status_code == 200
    text = response.content.decode()
    assert key.prefix in text
    assert plaintext.split("_")[2] not in text
    assert "secret_hash" not in text and key.secret_hash not in text


def test_api_keys_cannot_be_created_over_the_api(org, owner_client):
    response = owner_client.post("/api/v1/api-keys/", {"name": "x", "role": "viewer"}, format="json")
    assert response.status_code == 405


def test_revoke_api_key_stops_it_working(org, owner_client):
    key, plaintext = make_api_key(org, Role.VIEWER)
    victim = key_client(plaintext)
    assert victim.get("/api/v1/organization/").status_code == 200
    assert owner_client.delete(f"/api/v1/api-keys/{key.pk}/").status_code == 204
    assert victim.get("/api/v1/organization/").status_code == 401


# --- tenancy ----------------------------------------------------------------
def test_another_organisations_objects_are_404(org, owner_client, django_capture_on_commit_callbacks):
    other = OrganizationFactory()
    other_owner = owner_of(other)
    other_member = MembershipFactory(organization=other, role=Role.VIEWER)
    other_key, _ = api_key_create(
        organization=other, name="theirs", role=Role.VIEWER, expires_at=None, actor=other_owner
    )
    other_client = api_client_for(other)
    with django_capture_on_commit_callbacks(execute=True):
        other_invitation = _invite(other_client, email="theirs@example.com").json()["id"]

    for url in (
        f"/api/v1/members/{other_member.pk}/",
        f"/api/v1/invitations/{other_invitation}/",
        f"/api/v1/api-keys/{other_key.pk}/",
    ):
        assert owner_client.get(url).status_code == 404, url
        response = owner_client.delete(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    assert (
        owner_client.patch(f"/api/v1/members/{other_member.pk}/", {"role": "owner"}, format="json").status_code == 404
    )
    assert owner_client.post(f"/api/v1/invitations/{other_invitation}/resend/").status_code == 404

    assert Membership.objects.filter(pk=other_member.pk).exists()
    assert ApiKey.objects.for_org(other).get(pk=other_key.pk).revoked_at is None
    assert Invitation.objects.for_org(other).get(pk=other_invitation).revoked_at is None
    listed = {row["id"] for row in owner_client.get("/api/v1/members/").json()["results"]}
    assert str(other_member.pk) not in listed


def test_activity_log_is_scoped_and_filterable(org, owner_client, django_capture_on_commit_callbacks):
    other_client = api_client_for(OrganizationFactory())
    with django_capture_on_commit_callbacks(execute=True):
        _invite(owner_client, email="mine@example.com")
        _invite(other_client, email="theirs@example.com")
    response = owner_client.get("/api/v1/audit-events/", {"action": "invitation.created"})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 1
    assert rows[0]["action"] == "invitation.created"
    everything = owner_client.get("/api/v1/audit-events/").json()
    assert {"api_key.created", "invitation.created"} <= {row["action"] for row in everything["results"]}
    assert "theirs@example.com" not in str(everything)
