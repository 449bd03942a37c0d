"""Hardening under production settings (ASVS 3.3, 3.4, 6.2, 13.4, 16.5; the auditor's A03, A04, A05, A32).

`production.py` runs `manage.py` in a subprocess with DEBUG off and production-like secrets, so what is
checked is what production gets: Django's deploy checks pass at WARNING, passwords hash with Argon2,
cookies are "__Host-" and Secure. The header and cookie tests then apply those very settings to this
process and send requests over HTTPS, to every kind of response: an HTML page, an API answer, a 404 and
a 500 of each.
"""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client
from django.urls import reverse

from accounts.api_keys import api_key_create
from accounts.roles import Role
from accounts.tests.factories import DEFAULT_PASSWORD, MembershipFactory, OrganizationFactory, UserFactory
from accounts.tests.helpers import verified_client
from core.logging import RequestIdFilter
from tests.security import boom_urls
from tests.security.production import manage, production_settings

HSTS_MIN_SECONDS = 31_536_000  # one year (ASVS 3.4.1)
NOT_APPLIED = {"DEBUG", "PASSWORD_HASHERS"}  # tests keep a fast hasher; DEBUG is pytest-django's


def test_check_deploy_passes_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_production_hashes_passwords_with_argon2id_and_keeps_pbkdf2_for_upgrades():
    hashers = production_settings()["PASSWORD_HASHERS"]
    assert hashers[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert "django.contrib.auth.hashers.PBKDF2PasswordHasher" in hashers
    assert "MD5" not in " ".join(hashers)
    assert Argon2PasswordHasher().encode("a sturdy passphrase", "saltsaltsalt").startswith("argon2$argon2id$")


def test_production_sessions_and_cookies():
    prod = production_settings()
    assert prod["DEBUG"] is False
    assert prod["SESSION_COOKIE_NAME"] == "__Host-sessionid"
    assert prod["CSRF_COOKIE_NAME"] == "__Host-csrftoken"
    assert prod["SESSION_COOKIE_SECURE"] and prod["CSRF_COOKIE_SECURE"] and prod["SESSION_COOKIE_HTTPONLY"]
    assert prod["SESSION_COOKIE_SAMESITE"] == prod["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert 0 < prod["SESSION_IDLE_SECONDS"] <= 30 * 60
    assert prod["SESSION_IDLE_SECONDS"] < prod["SESSION_ABSOLUTE_SECONDS"] <= 12 * 3600
    assert prod["SESSION_COOKIE_AGE"] == prod["SESSION_ABSOLUTE_SECONDS"]
    assert prod["SECURE_HSTS_SECONDS"] >= HSTS_MIN_SECONDS and prod["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert prod["SECURE_SSL_REDIRECT"]


@pytest.fixture
def production(settings):
    """This process with production's hardening settings; requests must then be sent with secure=True."""
    for name, value in production_settings().items():
        if name not in NOT_APPLIED:
            setattr(settings, name, tuple(value) if name == "SECURE_PROXY_SSL_HEADER" and value else value)
    return settings


@pytest.fixture
def org(db):
    return OrganizationFactory(slug="hardened")


@pytest.fixture
def owner(org):
    user = UserFactory()
    MembershipFactory(user=user, organization=org, role=Role.OWNER)
    return user


def _api_key(org, owner) -> str:
    return api_key_create(organization=org, name="headers", role=Role.VIEWER, expires_at=None, actor=owner)[1]


def _csp(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def assert_hardened(response, label: str) -> None:
    hsts = response.get("Strict-Transport-Security", "")
    assert "includeSubDomains" in hsts, f"{label}: HSTS {hsts!r}"
    assert int(hsts.split("max-age=")[1].split(";")[0]) >= HSTS_MIN_SECONDS, label
    csp = _csp(response.get("Content-Security-Policy", ""))
    assert csp, f"{label}: no Content-Security-Policy"
    sources = " ".join(" ".join(values) for values in csp.values())
    assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources, f"{label}: {csp}"
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"], label
    assert csp["base-uri"] == ["'none'"] and csp["default-src"] == ["'self'"], label
    assert response.get("X-Content-Type-Options") == "nosniff", label
    assert response.get("Referrer-Policy") in ("same-origin", "strict-origin-when-cross-origin", "no-referrer"), label
    assert response.get("Cross-Origin-Opener-Policy") == "same-origin", label
    assert response.get("X-Frame-Options") == "DENY", label
    assert response.get("X-Request-ID"), label


@pytest.mark.django_db
def test_every_kind_of_response_carries_the_security_headers(production, org, owner):
    production.ROOT_URLCONF = boom_urls.__name__
    anonymous = Client(raise_request_exception=False)
    signed_in = verified_client(Client(raise_request_exception=False), owner)
    api = Client(raise_request_exception=False, headers={"Authorization": f"Bearer {_api_key(org, owner)}"})
    cases = {
        "HTML page, signed out": (anonymous, reverse("accounts:login"), 200),
        "HTML page, signed in": (signed_in, f"/o/{org.slug}/", 200),
        "API answer": (api, "/api/v1/members/", 200),
        "API refusal": (anonymous, "/api/v1/members/", 401),
        "HTML 404": (signed_in, "/no-such-page/", 404),
        "API 404": (api, "/api/v1/members/00000000-0000-0000-0000-000000000000/", 404),
        "HTML 500": (anonymous, "/boom/", 500),
        "API 500": (anonymous, "/api/v1/boom/", 500),
        "HTTP redirected to HTTPS": (anonymous, reverse("accounts:login"), 301),
    }
    for label, (client, path, status) in cases.items():
        response = client.get(path, secure=status != 301)
        assert response.status_code == status, f"{label}: {response.status_code}"
        if status == 301:
            assert response["Location"].startswith("https://")
            continue
        assert_hardened(response, label)


@pytest.mark.django_db
def test_cookies_are_host_prefixed_secure_http_only_and_same_site(production, owner):
    browser = Client()
    page = browser.get(reverse("accounts:login"), secure=True)
    login = browser.post(
        reverse("accounts:login"), {"username": owner.email, "password": DEFAULT_PASSWORD}, secure=True
    )
    assert login.status_code == 302, login.content[:500]
    cookies = {**page.cookies, **login.cookies}
    assert {"__Host-sessionid", "__Host-csrftoken", "__Host-clp_device"} <= set(cookies), set(cookies)
    for name, cookie in cookies.items():
        assert name.startswith("__Host-"), name
        assert cookie["secure"] and cookie["path"] == "/" and not cookie["domain"], (name, cookie.items())
        assert cookie["samesite"] == "Lax", name
        if name != "__Host-csrftoken":  # the CSRF cookie is read by htmx; nothing else is for scripts
            assert cookie["httponly"], name


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/boom/", "/api/v1/boom/"])
def test_a_crash_shows_a_generic_answer_with_a_request_id_and_logs_the_details(settings, path):
    settings.ROOT_URLCONF = boom_urls.__name__
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    keep = Keep()
    keep.addFilter(RequestIdFilter())
    request_logger = logging.getLogger("django.request")
    request_logger.addHandler(keep)
    try:
        response = Client(raise_request_exception=False).get(path, headers={"X-Request-ID": "req-abcdef123456"})
    finally:
        request_logger.removeHandler(keep)
    body = response.content.decode()
    assert response.status_code == 500
    assert "req-abcdef123456" in body
    for leak in ("hunter2", "RuntimeError", "Traceback", "boom_urls", "SECRET_KEY"):
        assert leak not in body, leak
    if path.startswith("/api/"):
        assert response.json()["error"] == {
            "code": "server_error",
            "message": "Something went wrong on our side. We have logged it.",
            "fields": {},
            "request_id": "req-abcdef123456",
        }
    logged = [r for r in records if r.exc_info and boom_urls.SECRET_DETAIL in str(r.exc_info[1])]
    assert logged and logged[0].request_id == "req-abcdef123456"
