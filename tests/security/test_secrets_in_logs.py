"""No password, one-time code, token, API key or Authorization header in any log record, at any level
(ASVS 16.2.5; the auditor's A31).

Every log record of the whole suite is scanned by tests/security/secret_scan.py (a plugin the root
conftest loads), but only at the levels loggers are configured for. Here the flows that handle secrets
run with every logger at DEBUG, and each record, formatted as production formats it (JSON, exception
included), is searched for the exact secrets the flows used, right and wrong ones.
"""

from __future__ import annotations

import logging
import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.api_keys import api_key_create
from accounts.invitations import invitation_create
from accounts.roles import Role
from accounts.tests.factories import DEFAULT_PASSWORD, MembershipFactory, TOTPDeviceFactory, UserFactory
from accounts.tests.helpers import totp_code
from core.logging import JsonFormatter, RequestIdFilter
from tests.security import secret_scan

pytestmark = pytest.mark.django_db


class Everything(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.json = JsonFormatter()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.json.format(record))


# Loggers the settings keep above DEBUG whatever LOG_LEVEL says: django.template's DEBUG records print
# whole template contexts (CSRF tokens, request paths with tokens, personal data).
PINNED = {"django.template": "INFO"}


@pytest.fixture
def all_logs(settings):
    """Every logger at DEBUG (but the pinned ones), every record formatted as production's JSON lines."""
    for name, level in PINNED.items():
        assert settings.LOGGING["loggers"][name]["level"] == level
    handler = Everything()
    loggers = [logging.getLogger()] + [
        lg
        for name, lg in logging.root.manager.loggerDict.items()
        if isinstance(lg, logging.Logger) and name not in PINNED
    ]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
        if lg is loggers[0] or not lg.propagate:
            lg.addHandler(handler)
    yield handler.lines
    for lg, level, disabled in saved:
        lg.setLevel(level)
        lg.disabled = disabled
        lg.removeHandler(handler)


def assert_not_logged(lines: list[str], secrets: dict[str, str]) -> None:
    assert lines, "the flows logged nothing at all: is the capture working?"
    for label, secret in secrets.items():
        hits = [line for line in lines if secret in line]
        assert not hits, f"{label} appears in {len(hits)} log line(s), e.g. {hits[0][:300]}"
    flagged = [line for line in lines if secret_scan.scan_text(line)]
    assert not flagged, flagged[:3]


def test_sign_in_and_mfa_leave_no_password_or_code_in_the_logs(all_logs, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the wrong code must not delay the right one
    user = UserFactory()
    device = TOTPDeviceFactory(user=user)
    browser = Client()
    wrong_password = "not-the-password-Zq81"
    browser.post(reverse("accounts:login"), {"username": user.email, "password": wrong_password})
    browser.post(reverse("accounts:login"), {"username": user.email, "password": DEFAULT_PASSWORD})
    code = totp_code(device)
    wrong_code = f"{(int(code) + 500_000) % 1_000_000:06d}"
    browser.post(reverse("accounts:mfa_verify"), {"code": wrong_code})
    browser.post(reverse("accounts:mfa_verify"), {"code": code})
    browser.post(reverse("accounts:mfa_verify"), {"code": code})  # the replay
    assert browser.get(reverse("accounts:profile")).status_code == 200
    new_password = "a changed passphrase 77"
    browser.post(
        reverse("accounts:password_change"),
        {"old_password": DEFAULT_PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert_not_logged(
        all_logs,
        {
            "the password": DEFAULT_PASSWORD,
            "a wrong password": wrong_password,
            "the new password": new_password,
            "the TOTP code": code,
            "a wrong TOTP code": wrong_code,
        },
    )


def test_api_keys_and_authorization_headers_stay_out_of_the_logs(all_logs):
    membership = MembershipFactory(role=Role.OWNER)
    _, key = api_key_create(
        organization=membership.organization, name="logs", role=Role.OWNER, expires_at=None, actor=membership.user
    )
    prefix = key.split("_")[1]
    forged = f"clp_{prefix}_{'x' * 43}"
    assert Client(headers={"Authorization": f"Bearer {key}"}).get("/api/v1/members/").status_code == 200
    assert Client(headers={"Authorization": f"Bearer {forged}"}).get("/api/v1/members/").status_code == 401
    assert (
        Client(headers={"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"})
        .get("/api/v1/members/")
        .status_code
        == 401
    )
    Client(headers={"Authorization": f"Bearer {key}"}).post(
        "/api/v1/members/", "{" * 50, content_type="application/json"
    )
    assert_not_logged(
        all_logs,
        {
            "the API key": key,
            "its secret": key.rsplit("_", 1)[1],
            "a forged key": forged,
            "a bearer JWT": "eyJhbGciOiJIUzI1NiJ9",
        },
    )


def test_reset_and_invitation_tokens_stay_out_of_the_logs(all_logs, django_capture_on_commit_callbacks):
    user = UserFactory()
    browser = Client()
    browser.post(reverse("accounts:password_reset"), {"email": user.email})
    link = re.search(r"/accounts/reset/\S+/", mail.outbox[-1].body).group(0)
    token = link.rstrip("/").rsplit("/", 1)[1]
    form = browser.get(link, follow=True)
    assert form.status_code == 200
    browser.post(form.redirect_chain[-1][0], {"new_password1": "reset passphrase 31", "new_password2": "x"})
    owner = MembershipFactory(role=Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        invitation_create(organization=owner.organization, email="invitee@example.com", role="viewer", actor=owner.user)
    invitation = re.search(r"/accounts/invitations/(\S+)/", mail.outbox[-1].body).group(1)
    assert Client().get(reverse("accounts:invitation_accept", kwargs={"token": invitation})).status_code == 200
    Client().get(reverse("accounts:invitation_accept", kwargs={"token": invitation[:-4] + "AAAA"}))
    assert_not_logged(
        all_logs,
        {
            "the reset token": token,
            "the invitation token": invitation,
            "a tampered invitation token": invitation[:-4] + "AAAA",
        },
    )
