"""Passkeys as an additional second factor: enrollment behind a recent check, verification like a TOTP code,
no passwordless sign-in, and the plugin's rows classified in the privacy registry."""

import json

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp_webauthn.models import WebAuthnAttestation, WebAuthnCredential, WebAuthnUserHandle
from webauthn.helpers import bytes_to_base64url

from accounts.models import SignInEvent
from accounts.reauth import SESSION_KEY as MFA_VERIFIED_AT
from core.models import AuditEvent
from core.registry import declaration_for, model_field_names

from .factories import TOTPDeviceFactory, UserFactory
from .helpers import verified_client
from .passkey_support import SoftwarePasskey

pytestmark = pytest.mark.django_db


def _post_json(client, name: str, body: dict | None = None, **query):
    url = reverse(name) + (f"?{'&'.join(f'{k}={v}' for k, v in query.items())}" if query else "")
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def _software_passkey() -> SoftwarePasskey:
    return SoftwarePasskey(rp_id=settings.OTP_WEBAUTHN_RP_ID, origin=settings.OTP_WEBAUTHN_ALLOWED_ORIGINS[0])


def _enroll(client, passkey: SoftwarePasskey) -> WebAuthnCredential:
    options = _post_json(client, "accounts:passkey_register_begin")
    assert options.status_code == 200, options.content
    done = _post_json(client, "accounts:passkey_register_complete", passkey.create(options.json()))
    assert done.status_code == 200, done.content
    return WebAuthnCredential.objects.get(pk=done.json()["id"])


def _password_step_only(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_enroll_then_verify_a_later_sign_in_with_the_passkey():
    user = UserFactory()
    passkey = _software_passkey()
    client = verified_client(Client(), user)

    page = client.get(reverse("accounts:passkey_add"))
    assert page.status_code == 200
    assert b'id="otp_webauthn_config" type="application/json"' in page.content
    device = _enroll(client, passkey)
    assert (device.user, device.name, device.confirmed) == (user, "Passkey", True)
    assert WebAuthnAttestation.objects.filter(credential=device, fmt="none").exists()
    assert AuditEvent.unscoped_objects.filter(action="mfa.passkey_added", target_id=str(device.pk)).exists()
    assert b"Passkey" in client.get(reverse("accounts:mfa_devices")).content

    later = _password_step_only(user)
    verify_page = later.get(reverse("accounts:mfa_verify"))
    assert b"Use a passkey" in verify_page.content
    options = _post_json(later, "accounts:passkey_verify_begin").json()
    assert [c["id"] for c in options["allowCredentials"]] == [bytes_to_base64url(passkey.credential_id)]
    done = _post_json(later, "accounts:passkey_verify_complete", passkey.get(options), next="/accounts/profile/")

    assert done.status_code == 200, done.content
    assert done.json()["redirect_url"] == "/accounts/profile/"
    assert later.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert later.session.get(MFA_VERIFIED_AT)
    assert later.get(reverse("accounts:profile")).status_code == 200  # past the MFA gate
    event = SignInEvent.objects.filter(user=user).latest("occurred_at")
    assert (event.factor, event.succeeded) == ("webauthn", True)
    device.refresh_from_db()
    assert device.last_used_at is not None and device.sign_count == passkey.sign_count


def test_adding_a_passkey_needs_a_recent_second_factor_check():
    user = UserFactory()
    client = verified_client(Client(), user, recent_mfa=False)

    page = client.get(reverse("accounts:passkey_add"))
    assert page.status_code == 302 and page.url.startswith(reverse("accounts:mfa_verify"))
    refused = _post_json(client, "accounts:passkey_register_begin")
    assert refused.status_code == 403 and refused.json()["code"] == "recent_mfa_required"

    unverified = _password_step_only(TOTPDeviceFactory().user)
    assert _post_json(unverified, "accounts:passkey_register_begin").status_code == 302  # the MFA gate
    assert not WebAuthnCredential.objects.exists()


def test_a_passkey_is_never_a_way_around_the_password():
    anonymous = Client()
    refused = _post_json(anonymous, "accounts:passkey_verify_begin")
    assert refused.status_code == 403 and refused.json()["code"] == "passwordless_login_disabled"


def test_bad_signature_another_users_passkey_and_replay_are_refused():
    user, other = UserFactory(), UserFactory()
    mine, theirs = _software_passkey(), _software_passkey()
    _enroll(verified_client(Client(), user), mine)
    _enroll(verified_client(Client(), other), theirs)
    client = _password_step_only(user)

    options = _post_json(client, "accounts:passkey_verify_begin").json()
    forged = mine.get(options)
    forged["response"]["signature"] = theirs.get(options)["response"]["signature"]
    assert _post_json(client, "accounts:passkey_verify_complete", forged).status_code == 422

    options = _post_json(client, "accounts:passkey_verify_begin").json()
    assert _post_json(client, "accounts:passkey_verify_complete", theirs.get(options)).status_code == 403

    options = _post_json(client, "accounts:passkey_verify_begin").json()
    good = mine.get(options)
    assert _post_json(client, "accounts:passkey_verify_complete", good).status_code == 200
    assert _post_json(client, "accounts:passkey_verify_complete", good).status_code == 400  # challenge used up

    failures = SignInEvent.objects.filter(user=user, factor="webauthn", succeeded=False)
    assert failures.count() == 3 and {e.failure_reason for e in failures} == {"bad_code"}
    assert SignInEvent.objects.filter(user=user, factor="webauthn", succeeded=True).count() == 1


def test_failed_passkey_leaves_the_session_unverified():
    user = UserFactory()
    passkey = _software_passkey()
    _enroll(verified_client(Client(), user), passkey)
    client = _password_step_only(user)
    options = _post_json(client, "accounts:passkey_verify_begin").json()
    answer = passkey.get(options)
    answer["response"]["clientDataJSON"] = passkey.get(options | {"challenge": "AAAA"})["response"]["clientDataJSON"]

    assert _post_json(client, "accounts:passkey_verify_complete", answer).status_code == 422
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert client.get(reverse("accounts:profile")).status_code == 302


def test_remove_passkey_needs_recent_check_and_only_removes_your_own():
    user, other = UserFactory(), UserFactory()
    device = _enroll(verified_client(Client(), user), _software_passkey())
    theirs = _enroll(verified_client(Client(), other), _software_passkey())

    stale = verified_client(Client(), user, recent_mfa=False)
    assert stale.post(reverse("accounts:mfa_devices"), {"passkey": device.pk}).status_code == 302
    assert WebAuthnCredential.objects.filter(pk=device.pk).exists()

    client = verified_client(Client(), user)
    client.post(reverse("accounts:mfa_devices"), {"passkey": theirs.pk})
    assert WebAuthnCredential.objects.filter(pk=theirs.pk).exists()
    response = client.post(reverse("accounts:mfa_devices"), {"passkey": device.pk}, follow=True)
    assert b"Passkey removed." in response.content
    assert not WebAuthnCredential.objects.filter(pk=device.pk).exists()
    assert AuditEvent.unscoped_objects.filter(action="mfa.passkey_removed").count() == 1


@pytest.mark.parametrize("model", [WebAuthnCredential, WebAuthnAttestation, WebAuthnUserHandle])
def test_every_field_of_the_plugins_models_is_classified(model):
    declaration = declaration_for(model)
    assert declaration is not None
    assert [name for name in model_field_names(model) if declaration.classification(name) is False] == []
    assert (set(declaration.personal) | declaration.not_personal) <= set(model_field_names(model))
