"""Brute force: the lockout is decided before any password hash is computed (ASVS 6.3.1; auditor's A06).

An Argon2 verification costs about 100 MiB and 95 ms, so a locked-out account or address must cost the
server nothing: django-axes' backend runs first (settings.AUTHENTICATION_BACKENDS) and refuses before
ModelBackend hashes; the password change form has its own limit on wrong current passwords. The
lockout itself (per account across addresses, per address across accounts,
a spoofed X-Forwarded-For not resetting it) is tested in accounts/tests/test_login.py; the staff
admin's sign-in in accounts/tests/test_admin_signin.py.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import get_hasher
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from accounts.tests.helpers import verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def hashes(monkeypatch):
    """Counts password hash computations (verifications and the dummy hash for unknown accounts)."""
    counted = {"n": 0}
    hasher = type(get_hasher())
    for name in ("verify", "encode"):
        original = getattr(hasher, name)

        def counting(self, *args, _original=original, **kwargs):
            counted["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(hasher, name, counting)
    return counted


def _sign_in(client, email, password, ip, **headers):
    return client.post(reverse("accounts:login"), {"username": email, "password": password}, REMOTE_ADDR=ip, **headers)


def test_a_locked_out_account_costs_no_hash_even_with_the_right_password(hashes, settings):
    user = UserFactory()
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, user.email, "wrong password!", f"198.51.100.{n + 1}")
    assert hashes["n"] >= settings.AXES_FAILURE_LIMIT  # the failures themselves were checked
    hashes["n"] = 0
    for n in range(20):
        response = _sign_in(
            client, user.email, DEFAULT_PASSWORD, f"203.0.113.{n + 1}", HTTP_X_FORWARDED_FOR=f"10.0.{n}.1"
        )
        assert response.status_code == 429
    assert hashes["n"] == 0


def test_a_locked_out_address_costs_no_hash_for_any_account(hashes, settings):
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, f"spray{n}@example.com", "Spring2026!", "192.0.2.44")
    hashes["n"] = 0
    others = [UserFactory() for _ in range(5)]
    hashes["n"] = 0
    for other in others:
        assert (
            _sign_in(client, other.email, DEFAULT_PASSWORD, "192.0.2.44", HTTP_X_FORWARDED_FOR="198.18.0.1").status_code
            == 429
        )
    assert hashes["n"] == 0


def test_the_password_change_form_stops_guessing_the_current_password(hashes, settings):
    user = UserFactory()
    browser = verified_client(Client(), user)
    new = {"new_password1": "a fresh passphrase 55", "new_password2": "a fresh passphrase 55"}
    for n in range(settings.AXES_FAILURE_LIMIT):
        response = browser.post(reverse("accounts:password_change"), {"old_password": f"guess {n}!", **new})
        assert response.status_code == 400
    hashes["n"] = 0
    response = browser.post(reverse("accounts:password_change"), {"old_password": DEFAULT_PASSWORD, **new})
    assert response.status_code == 429 and b"Too many wrong current passwords" in response.content
    assert hashes["n"] == 0
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
