"""The whole sign-up and sign-in journey through the test client."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, RecoveryCodeDevice, SignInEvent, TOTPDevice, User

from .factories import DEFAULT_PASSWORD, MembershipFactory, TOTPDeviceFactory
from .helpers import totp_code

pytestmark = pytest.mark.django_db

SIGNUP = {
    "full_name": "Zoë Ångström-Nakamura",
    "email": "Owner@Example.com",
    "password1": "a sturdy passphrase 42",
    "password2": "a sturdy passphrase 42",
    "legal_name": "Ångström Trading GmbH",
    "business_name": "",
    "country": "de",
    "time_zone": "Europe/Berlin",
}


def _verification_link(message) -> str:
    return (
        re.search(r"https?://\S+/accounts/verify-email/\S+", message.body).group(0).split("://", 1)[1].split("/", 1)[1]
    )


def test_signup_verify_enroll_reaches_dashboard(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:signup"), SIGNUP)
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:verify_email_sent")
    user = User.objects.get_by_email("owner@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == "owner"
    assert re.fullmatch(r"org-[a-z0-9]{8}", membership.organization.slug)  # neutral, not the name
    assert membership.organization.country == "DE"

    # Sign-up does not sign in (an existing address gets the same answer), so before the email is
    # confirmed nothing else is reachable.
    assert client.get(reverse("accounts:verify_email_sent")).status_code == 200
    assert client.get(f"/o/{membership.organization.slug}/")["Location"].startswith(reverse("accounts:login"))
    assert client.get(reverse("accounts:mfa_enroll"))["Location"].startswith(reverse("accounts:login"))

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["Owner@example.com"]
    response = client.get("/" + _verification_link(mail.outbox[0]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:mfa_enroll"))

    response = client.get(reverse("accounts:mfa_enroll"))
    assert response.status_code == 200
    assert b"<svg" in response.content
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    grouped = " ".join(device.base32_key[i : i + 4] for i in range(0, len(device.base32_key), 4))
    assert grouped.encode() in response.content

    response = client.post(reverse("accounts:mfa_enroll"), {"code": totp_code(device), "name": "Phone"})
    assert response.status_code == 200
    codes = re.findall(r"<code>([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})</code>", response.content.decode())
    assert len(codes) == 10
    assert RecoveryCodeDevice.objects.get(user=user).remaining == 10

    response = client.get(f"/o/{membership.organization.slug}/")
    assert response.status_code == 200


def test_verification_link_works_in_another_browser(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:signup"), SIGNUP)
    client.logout()
    response = client.get("/" + _verification_link(mail.outbox[0]))
    assert response["Location"] == reverse("accounts:login")
    assert User.objects.get_by_email("owner@example.com").email_verified


def test_tampered_or_expired_verification_link(client, time_machine, django_capture_on_commit_callbacks):
    time_machine.move_to(timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:signup"), SIGNUP)
    link = "/" + _verification_link(mail.outbox[0])
    response = client.get(link[:-3] + "xyz")
    assert response.status_code == 400
    assert b"not valid" in response.content
    time_machine.shift(60 * 60 * 24 * 4)
    response = client.get(link)
    assert response.status_code == 400
    assert b"expired" in response.content


def test_resend_verification_is_rate_limited(client, time_machine, django_capture_on_commit_callbacks):
    time_machine.move_to(timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:signup"), SIGNUP)
        client.post(reverse("accounts:verify_email_sent"))
    assert len(mail.outbox) == 1
    time_machine.shift(61)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:verify_email_sent"))
    assert len(mail.outbox) == 2


def test_login_then_totp_then_next(client):
    membership = MembershipFactory()
    device = TOTPDeviceFactory(user=membership.user)
    target = f"/o/{membership.organization.slug}/"
    response = client.post(
        reverse("accounts:login") + f"?next={target}",
        {"username": membership.user.email.upper(), "password": DEFAULT_PASSWORD, "next": target},
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    assert "clp_device" in response.cookies
    assert client.get(target).status_code == 302  # still gated
    response = client.post(reverse("accounts:mfa_verify"), {"code": totp_code(device), "next": target})
    assert response["Location"] == target
    assert client.get(target).status_code == 200
    events = list(SignInEvent.objects.filter(user=membership.user).order_by("id"))
    assert [(e.factor, e.succeeded) for e in events] == [("password", True), ("totp", True)]
    assert events[0].device_id and events[0].device_id == events[1].device_id


def test_unsafe_next_is_ignored(client):
    membership = MembershipFactory()
    device = TOTPDeviceFactory(user=membership.user)
    client.post(reverse("accounts:login"), {"username": membership.user.email, "password": DEFAULT_PASSWORD})
    response = client.post(reverse("accounts:mfa_verify"), {"code": totp_code(device), "next": "https://evil.example/"})
    assert response["Location"] == reverse("portal:home")


def test_user_without_device_goes_to_enrollment(client):
    membership = MembershipFactory()
    response = client.post(reverse("accounts:login"), {"username": membership.user.email, "password": DEFAULT_PASSWORD})
    assert response["Location"].startswith(reverse("accounts:mfa_enroll"))
    assert client.get(reverse("accounts:mfa_verify"))["Location"].startswith(reverse("accounts:mfa_enroll"))


def test_password_only_session_cannot_enroll_another_device(client):
    """A stolen password must not be enough to add an authenticator to an enrolled account."""
    membership = MembershipFactory()
    TOTPDeviceFactory(user=membership.user)
    client.post(reverse("accounts:login"), {"username": membership.user.email, "password": DEFAULT_PASSWORD})
    response = client.get(reverse("accounts:mfa_enroll"))
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    assert TOTPDevice.objects.filter(user=membership.user).count() == 1
