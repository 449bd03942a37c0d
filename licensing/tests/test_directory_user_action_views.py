"""The directory user actions through the dashboard and the API: confirmations, roles, recent MFA, the
password shown once, the operation's timeline, and error cases answered with clear messages."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.api_keys import api_key_create
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory
from accounts.tests.helpers import verified_client
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, LicenseAssignment, ProvisioningOperation

from . import directory_helpers
from .directory_helpers import FABRIKAM, premium, run_sync

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

graph = directory_helpers.graph
linked_org = directory_helpers.linked_org
owner = directory_helpers.owner

DOMAIN = "fabrikamdemo.onmicrosoft.com"


def url(name, org, **kwargs):
    return reverse(f"licensing:{name}", kwargs={"org_slug": org.slug, **kwargs})


@pytest.fixture
def synced(linked_org):
    run_sync(linked_org)
    return linked_org


def licensed_user(organization) -> DirectoryUser:
    pool = premium(organization)
    with tenant_context(organization):
        return LicenseAssignment.objects.for_org(organization).filter(
            sku=pool, state=LicenseAssignment.State.ASSIGNED).select_related("user").first().user


def password_on(page: bytes) -> str:
    match = re.search(rb'id="temporary-password-value">([^<]+)</code>', page)
    assert match, page.decode()[:2000]
    # The page escapes it (a password may hold & or <); the browser shows the characters themselves.
    return html.unescape(match.group(1).decode())


def password_matches(emulator, graph_id, password: str) -> bool:
    response = emulator.session.post(
        f"{emulator.base_url}/_emulator/tenants/{FABRIKAM}/users/{graph_id}/password-check",
        json={"password": password}, timeout=10)
    return response.json()["matches"]


# --- pages -----------------------------------------------------------------------------------------------------


def test_create_user_page_to_password_shown_once(client, synced, owner, emulator):
    verified_client(client, owner)
    listing = client.get(url("directory_users", synced))
    assert url("directory_user_new", synced).encode() in listing.content
    form = client.get(url("directory_user_new", synced))
    assert form.status_code == 200 and f"@{DOMAIN}".encode() in form.content
    response = client.post(url("directory_user_new", synced), {
        "display_name": "Katherine Johnson", "user_name": "katherine.johnson", "domain": DOMAIN,
        "usage_location": "us", "force_change_password": "on",
    })
    assert response.status_code == 302
    action_url = response["Location"]
    page = client.get(action_url)
    assert page.status_code == 200
    assert b"Succeeded" in page.content and b"Created in Microsoft 365" in page.content
    assert b"Show the password once" in page.content and b"temporary-password-value" not in page.content
    reveal = action_url + "reveal/"
    shown = client.post(reveal)
    assert shown.status_code == 200 and shown["Cache-Control"] == "no-store"
    password = password_on(shown.content)
    with tenant_context(synced):
        operation = ProvisioningOperation.objects.for_org(synced).get(pk=action_url.rstrip("/").rsplit("/", 1)[1])
        user = DirectoryUser.objects.for_org(synced).get(pk=operation.target_id)
    assert password_matches(emulator, user.graph_id, password)
    # Once only: a second reveal explains and shows nothing; the page no longer offers it.
    again = client.post(reveal, follow=True)
    assert b"already shown" in again.content and html.escape(password).encode() not in again.content
    assert html.escape(password).encode() not in client.get(action_url).content
    # The new user is in the directory at once, with the action's history on its page.
    detail = client.get(url("directory_user", synced, pk=user.pk))
    assert b"Katherine Johnson" in detail.content and b"Create user" in detail.content


def test_create_user_form_errors_are_shown_on_the_form(client, synced, owner):
    verified_client(client, owner)
    taken = licensed_user(synced).user_principal_name.split("@")[0]
    for data, message in (
        ({"user_name": "bad name"}, b"without spaces"),
        ({"user_name": taken}, b"already taken"),
        ({"usage_location": "1"}, b"two-letter country code"),
    ):
        response = client.post(url("directory_user_new", synced), {
            "display_name": "X Y", "user_name": "x.y", "domain": DOMAIN, **data})
        assert response.status_code == 400 and message in response.content


def test_sensitive_actions_need_a_recent_second_factor(client, synced, owner):
    verified_client(client, owner, recent_mfa=False)
    user = licensed_user(synced)
    assert "/mfa/" in client.get(url("directory_user_new", synced))["Location"]
    assert "/mfa/" in client.post(url("directory_user_reset_password", synced, pk=user.pk))["Location"]
    with tenant_context(synced):
        assert not ProvisioningOperation.objects.for_org(synced).filter(kind__startswith="directory.").exists()


@pytest.mark.parametrize("recent_mfa", [True, False])
def test_viewer_sees_no_actions_and_cannot_post_them(client, synced, recent_mfa):
    viewer = MembershipFactory(organization=synced, role=Role.VIEWER).user
    verified_client(client, viewer, recent_mfa=recent_mfa)
    user = licensed_user(synced)
    page = client.get(url("directory_user", synced, pk=user.pk))
    assert page.status_code == 200 and b"Account actions" not in page.content
    for name in ("directory_user_block", "directory_user_unblock", "directory_user_reset_password",
                 "directory_user_offboard"):
        assert client.post(url(name, synced, pk=user.pk)).status_code == 403
    assert client.get(url("directory_user_new", synced)).status_code == 403


def test_block_offboard_from_the_user_page_with_timeline(client, synced, owner, emulator):
    verified_client(client, owner)
    user = licensed_user(synced)
    page = client.get(url("directory_user", synced, pk=user.pk))
    assert b"Block sign-in" in page.content and b"data-confirm=" in page.content
    assert b"Convert to a shared mailbox" in page.content
    blocked = client.post(url("directory_user_block", synced, pk=user.pk), follow=True)
    assert b"Sign-in blocked" in blocked.content and b"Signed out of every session" in blocked.content
    page = client.get(url("directory_user", synced, pk=user.pk))
    assert b"Unblock sign-in" in page.content and b"Block sign-in</button>" not in page.content
    assert b'id="user-sign-in">Blocked<' in page.content
    missing_choice = client.post(url("directory_user_offboard", synced, pk=user.pk), {}, follow=True)
    assert b"Choose what happens to the user&#x27;s mailbox." in missing_choice.content
    done = client.post(url("directory_user_offboard", synced, pk=user.pk), {"mailbox": "shared"}, follow=True)
    assert b"License removal sent to Microsoft" in done.content
    assert b"Not yet done by the portal" in done.content
    page = client.get(url("directory_user", synced, pk=user.pk))
    assert b"Offboarded on" in page.content


def test_another_organisations_user_is_a_404(client, synced, owner):
    from accounts.tests.factories import OrganizationFactory

    other = OrganizationFactory()
    MembershipFactory(organization=other, role=Role.OWNER, user=owner)
    verified_client(client, owner)
    user = licensed_user(synced)
    assert client.post(url("directory_user_block", other, pk=user.pk)).status_code == 404


# --- API -------------------------------------------------------------------------------------------------------


@pytest.fixture
def key_client(synced):
    admin = MembershipFactory(organization=synced, role=Role.LICENSE_ADMIN).user
    with tenant_context(synced):
        _, secret = api_key_create(organization=synced, name="hr-sync", role=Role.LICENSE_ADMIN, expires_at=None,
                                   actor=admin)
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_api_create_user_poll_and_reveal_once(key_client, synced, emulator):
    created = key_client.post("/api/v1/directory-users/", {
        "display_name": "Dorothy Vaughan", "user_name": "dorothy.vaughan", "domain": DOMAIN, "usage_location": "US",
    }, content_type="application/json", HTTP_IDEMPOTENCY_KEY="new-dorothy")
    assert created.status_code == 202, created.content
    operation_id = created.json()["id"]
    polled = key_client.get(f"/api/v1/directory-user-operations/{operation_id}/").json()
    assert polled["status"] == "succeeded" and polled["temporary_password_available"] is True
    assert [s["step"] for s in polled["timeline"]] == ["submitted", "created", "in_directory"]
    assert "temporary_password" not in polled["outcome"]
    user = key_client.get(f"/api/v1/directory-users/{polled['directory_user']}/").json()
    assert user["user_principal_name"] == f"dorothy.vaughan@{DOMAIN}" and user["usage_location"] == "US"
    # The same request again (same Idempotency-Key) is the same operation, not a second user.
    replay = key_client.post("/api/v1/directory-users/", {
        "display_name": "Dorothy Vaughan", "user_name": "dorothy.vaughan", "domain": DOMAIN, "usage_location": "US",
    }, content_type="application/json", HTTP_IDEMPOTENCY_KEY="new-dorothy")
    assert replay.json()["id"] == operation_id
    revealed = key_client.post(f"/api/v1/directory-user-operations/{operation_id}/reveal-password/",
                               HTTP_IDEMPOTENCY_KEY="reveal-1")
    assert revealed.status_code == 200 and revealed["Cache-Control"] == "no-store"
    password = revealed.json()["temporary_password"]
    with tenant_context(synced):
        graph_id = DirectoryUser.objects.for_org(synced).get(pk=user["id"]).graph_id
    assert password_matches(emulator, graph_id, password)
    again = key_client.post(f"/api/v1/directory-user-operations/{operation_id}/reveal-password/",
                            HTTP_IDEMPOTENCY_KEY="reveal-1")
    assert again.status_code == 410 and again.json()["error"]["code"] == "already_shown"
    assert password not in again.content.decode()


def test_api_errors_are_clear_4xx(key_client, synced, emulator, graph):
    taken = licensed_user(synced)
    response = key_client.post("/api/v1/directory-users/", {
        "display_name": "Copy", "user_name": taken.user_principal_name.split("@")[0], "domain": DOMAIN,
    }, content_type="application/json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "upn_taken" and error["fields"]["user_name"] and error["request_id"]
    bad = key_client.post("/api/v1/directory-users/", {"display_name": "X", "user_name": "x", "domain": "evil.com"},
                          content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"]["fields"]["domain"]
    assert key_client.post("/api/v1/directory-users/00000000-0000-4000-8000-000000000000/block-sign-in/")\
        .status_code == 404
    choice = key_client.post(f"/api/v1/directory-users/{taken.pk}/offboard/", {"mailbox": "archive"},
                             content_type="application/json")
    assert choice.status_code == 400 and choice.json()["error"]["fields"]["mailbox"]
    # Deleted in Microsoft but not yet synced: the operation fails with a message saying so.
    graph.graph._call("DELETE", FABRIKAM, f"/users/{taken.graph_id}", "users.delete")
    blocked = key_client.post(f"/api/v1/directory-users/{taken.pk}/block-sign-in/")
    assert blocked.status_code == 202
    polled = key_client.get(f"/api/v1/directory-user-operations/{blocked.json()['id']}/").json()
    assert polled["status"] == "failed" and "no longer has this user" in polled["failure_reason"]


def test_api_reset_password_by_a_person_needs_recent_mfa_to_reveal(synced, owner, emulator):
    user = licensed_user(synced)
    api = verified_client(Client(headers={"X-Organization": synced.slug}), owner, recent_mfa=False)
    reset = api.post(f"/api/v1/directory-users/{user.pk}/reset-password/", {"force_change_password": False},
                     content_type="application/json")
    assert reset.status_code == 202, reset.content
    operation_id = reset.json()["id"]
    denied = api.post(f"/api/v1/directory-user-operations/{operation_id}/reveal-password/")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "mfa_required"
    verified_client(api, owner)
    shown = api.post(f"/api/v1/directory-user-operations/{operation_id}/reveal-password/")
    assert shown.status_code == 200 and password_matches(emulator, user.graph_id, shown.json()["temporary_password"])


def test_api_viewer_key_cannot_act(synced):
    admin = MembershipFactory(organization=synced, role=Role.OWNER).user
    with tenant_context(synced):
        _, secret = api_key_create(organization=synced, name="ro", role=Role.VIEWER, expires_at=None, actor=admin)
    viewer = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    user = licensed_user(synced)
    assert viewer.post(f"/api/v1/directory-users/{user.pk}/block-sign-in/").status_code == 403
    assert viewer.get("/api/v1/directory-user-operations/").status_code == 200
