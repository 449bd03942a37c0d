"""The second factor in the browser: the gate in front of every dashboard page, clear errors for wrong
codes, throttling of code guessing, and the password lockout."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _password_step(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label(re.compile(r"^Password")).fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_typed_dashboard_url_waits_for_the_second_factor_and_wrong_codes_are_explained(page, make_member, settings):
    member = make_member(role="owner")
    slug = member.organization.slug
    _password_step(page, member.email)
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor check")

    # Password alone opens nothing: a typed dashboard address leads back to the code, remembering where to go.
    page.goto(f"/o/{slug}/team/")
    expect(page).to_have_url(re.compile(r"/accounts/mfa/verify/\?next=%2Fo%2F" + slug + r"%2Fteam%2F$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor check")

    # A wrong code: an alert, the message on the field, the field marked invalid and described by it.
    page.get_by_label("Code").fill(member.app.wrong_code())
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("Please correct the problem below.")
    code_field = page.get_by_label("Code")
    expect(code_field).to_have_attribute("aria-invalid", "true")
    expect(code_field).to_have_accessible_description(re.compile(r"That code is not valid"))
    expect(page.locator("input[name=next]")).to_have_value(f"/o/{slug}/team/")

    # While throttled after a wrong code even the right code waits; the page says for how long.
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    page.get_by_label("Code").fill(member.app.peek())
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_label("Code")).to_have_accessible_description(
        re.compile(r"Too many wrong codes\. Wait \d+ seconds")
    )

    # Once the wait is over, the right code opens the page that was typed.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    page.get_by_label("Code").fill(member.app.code())
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(rf"/o/{slug}/team/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Team")

    # A code is good once: signing in again with the code just used is refused, with the reason.
    page.goto("/accounts/logout/")
    page.get_by_role("main").get_by_role("button", name="Sign out").click()
    _password_step(page, member.email)
    page.get_by_label("Code").fill(member.app.code_at(member.app.last_step))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_label("Code")).to_have_accessible_description(re.compile(r"That code was already used"))


def test_signed_in_user_without_authenticator_is_sent_to_enrollment(page, make_member):
    from accounts.models import TOTPDevice

    member = make_member(role="viewer")
    TOTPDevice.objects.all().delete()
    _password_step(page, member.email)
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up two-factor authentication")

    page.goto(f"/o/{member.organization.slug}/")
    expect(page).to_have_url(re.compile(r"/accounts/mfa/enroll/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up two-factor authentication")

    page.get_by_label("Code from your app").fill("000000")
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Code from your app")).to_have_accessible_description(re.compile(r"did not match"))


def test_password_guessing_locks_sign_in(page, make_member, settings):
    member = make_member(role="owner")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _password_step(page, member.email, password="not-the-password")
        expect(page.get_by_role("alert")).to_contain_text("That email and password do not match an account.")
    _password_step(page, member.email, password="not-the-password")
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many failed sign-ins")

    # Now even the right password is refused, with a way forward.
    _password_step(page, member.email)
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many failed sign-ins")
    expect(page.get_by_role("link", name="reset it")).to_have_attribute("href", "/accounts/password-reset/")
    page.goto(f"/o/{member.organization.slug}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
