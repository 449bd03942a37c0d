"""Sessions end on time and on the events that must end them (ASVS 7.3.1, 7.3.2, 7.4.2, 7.4.3).

Idle timeout and absolute lifetime: SESSION_IDLE_SECONDS and SESSION_ABSOLUTE_SECONDS, enforced by
accounts.middleware.SessionLifetimeMiddleware. A password change ending the other browsers' sessions is
tested in accounts/tests/test_pages.py (test_password_change_signs_out_other_browsers_and_is_audited,
and the reset variant above it); a disabled account is tested here.
"""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import UserSession
from accounts.tests.factories import DEFAULT_PASSWORD, TOTPDeviceFactory, UserFactory
from accounts.tests.helpers import totp_code

pytestmark = pytest.mark.django_db

START = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture
def signed_in(time_machine):
    """A person signed in with password and TOTP through the real pages, at START."""
    time_machine.move_to(START, tick=False)
    user = UserFactory()
    device = TOTPDeviceFactory(user=user)
    browser = Client()
    browser.post(reverse("accounts:login"), {"username": user.email, "password": DEFAULT_PASSWORD})
    browser.post(reverse("accounts:mfa_verify"), {"code": totp_code(device, at=START.timestamp())})
    assert browser.get(reverse("accounts:profile")).status_code == 200
    return user, browser


def _signed_out(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def test_idle_session_ends_and_its_row_goes(signed_in, time_machine, settings):
    user, browser = signed_in
    time_machine.move_to(START + datetime.timedelta(seconds=settings.SESSION_IDLE_SECONDS - 60), tick=False)
    assert browser.get(reverse("accounts:profile")).status_code == 200
    time_machine.move_to(START + datetime.timedelta(seconds=2 * settings.SESSION_IDLE_SECONDS + 1), tick=False)
    response = browser.get(reverse("accounts:profile"))
    assert _signed_out(response)
    assert "next=" in response["Location"]
    assert not UserSession.objects.filter(user=user).exists()
    assert _signed_out(browser.get(reverse("accounts:profile")))  # stays signed out


def test_an_active_session_still_ends_at_its_absolute_lifetime(signed_in, time_machine, settings):
    _, browser = signed_in
    step = datetime.timedelta(seconds=settings.SESSION_IDLE_SECONDS // 2)
    now = START
    while now + step <= START + datetime.timedelta(seconds=settings.SESSION_ABSOLUTE_SECONDS):
        now += step
        time_machine.move_to(now, tick=False)
        assert browser.get(reverse("accounts:profile")).status_code == 200, now - START
    time_machine.move_to(START + datetime.timedelta(seconds=settings.SESSION_ABSOLUTE_SECONDS + 1), tick=False)
    assert _signed_out(browser.get(reverse("accounts:profile")))


def test_an_expired_session_on_the_api_is_a_401_in_the_error_shape(signed_in, time_machine, settings):
    _, browser = signed_in
    time_machine.move_to(START + datetime.timedelta(seconds=settings.SESSION_IDLE_SECONDS + 120), tick=False)
    response = browser.get("/api/v1/members/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "session_expired"
    assert response.json()["error"]["request_id"]


def test_signing_in_again_after_expiry_starts_fresh_clocks(signed_in, time_machine, settings):
    user, browser = signed_in
    later = START + datetime.timedelta(seconds=settings.SESSION_ABSOLUTE_SECONDS + 5)
    time_machine.move_to(later, tick=False)
    assert _signed_out(browser.get(reverse("accounts:profile")))
    browser.post(reverse("accounts:login"), {"username": user.email, "password": DEFAULT_PASSWORD})
    browser.post(
        reverse("accounts:mfa_verify"), {"code": totp_code(user.totpdevice_set.get(), at=later.timestamp() + 30)}
    )
    assert browser.get(reverse("accounts:profile")).status_code == 200


def test_disabling_an_account_ends_all_its_sessions_on_their_next_request(signed_in):
    user, browser = signed_in
    other = Client()
    other.cookies = browser.cookies  # a second request stream on the same session
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert other.get("/api/v1/members/").status_code in (401, 403)
    assert _signed_out(browser.get(reverse("accounts:profile")))
