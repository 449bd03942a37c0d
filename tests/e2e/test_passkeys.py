"""Passkeys in a real browser: Chromium's virtual authenticator (DevTools WebAuthn domain) stands in for
a phone or security key, so the plugin's scripts run as they would for a person, under our CSP."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def passkey_site(live_server, settings):
    """Passkeys are bound to a domain: the live server's (browsers accept plain HTTP on localhost)."""
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    assert live_server.url.startswith("http://localhost:")


def _virtual_authenticator(page) -> tuple:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def test_add_a_passkey_then_use_it_instead_of_a_code(page, make_member, passkey_site):
    from accounts.models import SignInEvent

    member = make_member()
    cdp, authenticator = _virtual_authenticator(page)

    # Adding a passkey is a device change: the fresh code at sign-in counts as the recent check.
    page.goto("/accounts/login/?next=/accounts/mfa/devices/")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label(re.compile(r"^Password")).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(member.app.code())
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor authentication")
    page.get_by_role("link", name="Add a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a passkey")
    page.get_by_role("button", name="Create a passkey").click()

    expect(page).to_have_url(re.compile(r"/accounts/mfa/devices/$"))
    expect(page.get_by_text("Passkey added.")).to_be_visible()
    expect(page.get_by_role("region", name="Passkeys").get_by_role("cell", name="Passkey", exact=True)).to_be_visible()
    assert len(cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]) == 1

    # Next sign-in: password, then the passkey instead of the code, and on to the page asked for.
    page.goto("/accounts/logout/")
    page.get_by_role("main").get_by_role("button", name="Sign out").click()
    page.goto("/accounts/login/?next=/accounts/profile/")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label(re.compile(r"^Password")).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor check")
    page.get_by_role("button", name="Use a passkey").click()

    expect(page).to_have_url(re.compile(r"/accounts/profile/$"))
    last = SignInEvent.objects.filter(user=member.user).order_by("-occurred_at", "-id").first()
    assert (last.factor, last.succeeded) == ("webauthn", True)
