"""Password sign-in: brute-force lockout per account and per IP, and the sign-in log."""

import pickle

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.urls import reverse

from accounts.models import SignInEvent

from .factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "accounts:login"


def _attempt(client, email, password="wrong password!", ip="203.0.113.10", **headers):
    return client.post(reverse(LOGIN), {"username": email, "password": password}, REMOTE_ADDR=ip, **headers)


def test_wrong_password_gives_form_error_and_event(client):
    user = UserFactory()
    response = _attempt(client, user.email)
    assert response.status_code == 400
    assert b"do not match an account" in response.content
    event = SignInEvent.objects.get()
    assert (event.user, event.succeeded, event.factor, event.failure_reason) == (
        user,
        False,
        "password",
        "bad_credentials",
    )
    assert event.email_index == user.email_index
    assert event.ip_address == "203.0.113.10"


def test_unknown_email_is_logged_without_the_address(client):
    response = _attempt(client, "nobody@example.org", HTTP_USER_AGENT="TestBrowser/1.0")
    assert response.status_code == 400
    event = SignInEvent.objects.get()
    assert event.user is None
    assert "nobody" not in event.email_index and len(event.email_index) == 64
    assert event.user_agent == "TestBrowser/1.0"
    assert event.device_id and response.cookies["clp_device"]["httponly"]


def _axes_cache_dump() -> str:
    """Every key and value axes left in the (in-process) cache, as text."""
    from django.core.cache import cache

    return repr([(key, pickle.loads(value)) for key, value in cache._cache.items()])


def test_axes_keeps_no_email_or_address_anywhere(client):
    _attempt(client, "Someone@Example.org", ip="203.0.113.77")
    # The counters are in the cache, keyed by hashes of the keyed indexes; no axes table has a row.
    assert not AccessAttempt.objects.exists() and not AccessFailureLog.objects.exists()
    assert not AccessLog.objects.exists()
    held = _axes_cache_dump().lower()
    assert "axes" in held
    assert "someone" not in held and "203.0.113.77" not in held


def test_account_locks_after_limit_even_from_many_ips(client, settings):
    user = UserFactory()
    for n in range(settings.AXES_FAILURE_LIMIT):
        _attempt(client, user.email, ip=f"198.51.100.{n + 1}")
    response = _attempt(client, user.email.upper(), password=DEFAULT_PASSWORD, ip="198.51.100.99")
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session
    assert SignInEvent.objects.filter(failure_reason="locked_out").exists()


def test_ip_locks_after_limit_across_accounts(client, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _attempt(client, f"guess{n}@example.com", ip="192.0.2.7")
    other = UserFactory()
    assert _attempt(client, other.email, password=DEFAULT_PASSWORD, ip="192.0.2.7").status_code == 429
    # The same account from a different network is unaffected.
    assert _attempt(client, other.email, password=DEFAULT_PASSWORD, ip="192.0.2.8").status_code == 302


def test_spoofed_forwarded_for_does_not_reset_the_ip_counter(client, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _attempt(client, f"guess{n}@example.com", ip="192.0.2.50", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    user = UserFactory()
    response = _attempt(client, user.email, password=DEFAULT_PASSWORD, ip="192.0.2.50", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert response.status_code == 429
    event = SignInEvent.objects.filter(user=user).get()
    assert event.ip_address == "192.0.2.50"


def test_success_resets_failures_and_records_event(client):
    user = UserFactory()
    _attempt(client, user.email)
    response = _attempt(client, user.email, password=DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert "axes" not in _axes_cache_dump()  # the failure counters were reset
    assert SignInEvent.objects.filter(user=user, succeeded=True, factor="password").count() == 1


def test_disabled_account_cannot_sign_in(client):
    user = UserFactory(is_active=False)
    assert _attempt(client, user.email, password=DEFAULT_PASSWORD).status_code == 400


@pytest.mark.parametrize(
    "data",
    [
        {"username": "not-an-email", "password": "x"},
        {"username": "a" * 5000 + "@example.com", "password": "x"},
        {"username": "user@example.com", "password": "p" * 10_000},
        {"username": "ü\x00@example.com", "password": "x"},
        {},
    ],
)
def test_malformed_login_input_is_a_form_error(client, data):
    response = client.post(reverse(LOGIN), data, REMOTE_ADDR="192.0.2.99")
    assert response.status_code == 400
