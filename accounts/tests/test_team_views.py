"""Team dashboard pages: members, invitations, API keys (shown once) and organisation settings."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.authentication import hash_api_secret
from accounts.models import ApiKey, Invitation, Membership
from accounts.roles import Role
from accounts.tests.api_support import make_api_key, owner_of
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def owner(org):
    return owner_of(org)


def url(name, org, **kwargs):
    return reverse(f"team:{name}", kwargs={"org_slug": org.slug, **kwargs})


def test_members_page_lists_people(org, owner):
    member = MembershipFactory(organization=org, role=Role.BILLING_ADMIN)
    response = verified_client(Client(), owner).get(url("members", org))
    assert response.status_code == 200
    html = response.content.decode()
    assert member.user.email in html and owner.email in html
    assert "Billing admin" in html
    assert "Last owner" in html


def test_viewer_sees_members_but_no_management(org, owner):
    viewer = MembershipFactory(organization=org, role=Role.VIEWER).user
    client = verified_client(Client(), viewer)
    response = client.get(url("members", org))
    assert response.status_code == 200
    assert "Invite someone" not in response.content.decode()
    assert client.get(url("invitation_create", org)).status_code == 403
    assert client.get(url("api_keys", org)).status_code == 403
    assert client.get(url("settings", org)).status_code == 403
    target = Membership.objects.get(user=owner)
    assert client.post(url("member_remove", org, membership_id=target.pk)).status_code == 403


def test_non_member_gets_404(org):
    outsider = MembershipFactory(role=Role.OWNER).user
    assert verified_client(Client(), outsider).get(url("members", org)).status_code == 404


def test_remove_and_change_role(org, owner):
    member = MembershipFactory(organization=org, role=Role.VIEWER)
    client = verified_client(Client(), owner)
    response = client.post(url("member_role", org, membership_id=member.pk), {"role": "license_admin"})
    assert response.status_code == 302
    assert Membership.objects.get(pk=member.pk).role == Role.LICENSE_ADMIN
    client.post(url("member_remove", org, membership_id=member.pk))
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_last_owner_cannot_leave_or_be_demoted(org, owner):
    client = verified_client(Client(), owner)
    mine = Membership.objects.get(user=owner)
    response = client.post(url("member_role", org, membership_id=mine.pk), {"role": "viewer"}, follow=True)
    assert "at least one owner" in response.content.decode()
    response = client.post(url("leave", org), follow=True)
    assert "last owner" in response.content.decode()
    assert Membership.objects.get(pk=mine.pk).role == Role.OWNER


def test_member_can_leave(org, owner):
    viewer = MembershipFactory(organization=org, role=Role.VIEWER)
    client = verified_client(Client(), viewer.user)
    assert client.get(url("leave", org)).status_code == 200
    assert client.post(url("leave", org)).status_code == 302
    assert not Membership.objects.filter(pk=viewer.pk).exists()


def test_other_orgs_member_and_key_are_404(org, owner):
    other = OrganizationFactory()
    stranger = MembershipFactory(organization=other, role=Role.VIEWER)
    key, _ = make_api_key(other)
    client = verified_client(Client(), owner)
    assert client.post(url("member_remove", org, membership_id=stranger.pk)).status_code == 404
    assert client.post(url("api_key_revoke", org, api_key_id=key.pk)).status_code == 404
    assert Membership.objects.filter(pk=stranger.pk).exists()


def test_invite_sends_email_with_accept_link(org, owner, django_capture_on_commit_callbacks):
    client = verified_client(Client(), owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("invitation_create", org), {"email": "new@example.com", "role": "viewer"})
    assert response.status_code == 302
    assert re.search(r"/accounts/invitations/[^/\s]+/", mail.outbox[-1].body)
    invitation = Invitation.objects.for_org(org).get()
    page = client.get(url("members", org)).content.decode()
    assert "new@example.com" in page
    client.post(url("invitation_revoke", org, invitation_id=invitation.pk))
    assert Invitation.objects.for_org(org).get().revoked_at is not None


def test_inviting_an_owner_needs_recent_mfa(org, owner):
    client = verified_client(Client(), owner, recent_mfa=False)
    response = client.post(url("invitation_create", org), {"email": "co@example.com", "role": "owner"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    assert not Invitation.objects.for_org(org).exists()


def test_api_key_created_shown_once_and_stored_hashed(org, owner):
    client = verified_client(Client(), owner)
    response = client.post(url("api_key_create", org), {"name": "Reports", "role": "viewer"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    plaintext = re.search(r'value="(clp_[a-z0-9]+_[A-Za-z0-9-]+)"', html).group(1)
    _clp, prefix, secret = plaintext.split("_")
    key = ApiKey.objects.for_org(org).get(prefix=prefix)
    assert key.secret_hash == hash_api_secret(secret)
    assert "copy-secret.js" in html and "data-copy-target" in html

    listing = client.get(url("api_keys", org)).content.decode()
    assert prefix in listing and secret not in listing and "Reports" in listing

    client.post(url("api_key_revoke", org, api_key_id=key.pk))
    assert ApiKey.objects.for_org(org).get(pk=key.pk).revoked_at is not None
    assert "Revoked" in client.get(url("api_keys", org)).content.decode()


def test_api_key_creation_needs_recent_mfa(org, owner):
    client = verified_client(Client(), owner, recent_mfa=False)
    response = client.post(url("api_key_create", org), {"name": "Reports", "role": "viewer"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    assert not ApiKey.objects.for_org(org).exists()


def test_settings_page_saves_and_gates_billing_details(org, owner):
    data = {
        "legal_name": "Renamed Ltd",
        "business_name": "",
        "country": "GB",
        "time_zone": "Europe/London",
        "tax_id": "",
    }
    stale = verified_client(Client(), owner, recent_mfa=False)
    assert stale.get(url("settings", org)).status_code == 200
    assert stale.post(url("settings", org), data).status_code == 302
    org.refresh_from_db()
    assert org.legal_name == "Renamed Ltd" and org.time_zone == "Europe/London"

    response = stale.post(url("settings", org), {**data, "tax_id": "980780684"})
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    org.refresh_from_db()
    assert org.tax_id == ""

    fresh = verified_client(Client(), owner)
    response = fresh.post(url("settings", org), {**data, "tax_id": "123"})
    assert response.status_code == 200
    assert "not a valid" in response.content.decode()
    fresh.post(url("settings", org), {**data, "tax_id": "980780684"})
    org.refresh_from_db()
    assert org.tax_id == "980780684"
