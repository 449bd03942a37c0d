"""Second-factor services and pages: encrypted secrets, replay, expiry, throttling, recovery codes, re-verification."""

import time

import pytest
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from accounts import mfa
from accounts.models import RecoveryCodeDevice, SignInEvent, TOTPDevice

from .factories import DEFAULT_PASSWORD, MembershipFactory, TOTPDeviceFactory, UserFactory
from .helpers import totp_code, verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_throttle(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def test_totp_secret_is_stored_encrypted_under_the_users_key():
    device = TOTPDeviceFactory()
    raw = TOTPDevice.objects.filter(pk=device.pk).values_list("key", flat=True).get()
    assert raw.startswith("v1:") and device.key not in raw
    assert TOTPDevice.objects.get(pk=device.pk).key == device.key


def test_totp_ciphertext_moved_to_another_user_fails():
    from core.crypto import DecryptionError

    mine, theirs = TOTPDeviceFactory(), TOTPDeviceFactory()
    raw = TOTPDevice.objects.filter(pk=mine.pk).values_list("key", flat=True).get()
    TOTPDevice.objects.filter(pk=theirs.pk).update(key=raw)
    with pytest.raises(DecryptionError):
        _ = TOTPDevice.objects.get(pk=theirs.pk).key


def test_valid_code_accepted_once_then_replay_rejected(no_throttle):
    device = TOTPDeviceFactory()
    code = totp_code(device)
    assert mfa.mfa_verify(user=device.user, token=code).ok
    again = mfa.mfa_verify(user=device.user, token=code)
    assert not again.ok
    assert again.failure == "replayed_code"
    assert "already used" in again.message


def test_expired_and_wrong_codes_rejected(no_throttle):
    device = TOTPDeviceFactory()
    old = totp_code(device, at=time.time() - 300)
    result = mfa.mfa_verify(user=device.user, token=old)
    assert (result.ok, result.failure) == (False, "bad_code")
    result = mfa.mfa_verify(user=device.user, token="12345x")
    assert (result.ok, result.factor) == (False, "recovery")


def test_neighbouring_time_step_accepted_for_clock_drift(no_throttle):
    device = TOTPDeviceFactory()
    assert mfa.mfa_verify(user=device.user, token=totp_code(device, at=time.time() + 30)).ok


def test_wrong_codes_are_throttled():
    device = TOTPDeviceFactory()
    wrong = "000000" if totp_code(device) != "000000" else "111111"
    assert mfa.mfa_verify(user=device.user, token=wrong).failure == "bad_code"
    result = mfa.mfa_verify(user=device.user, token=totp_code(device))
    assert (result.ok, result.failure) == (False, "throttled")
    assert "Wait" in result.message


def test_recovery_codes_are_hashed_and_single_use(no_throttle):
    user = UserFactory()
    TOTPDeviceFactory(user=user)
    codes = mfa.recovery_codes_regenerate(user=user)
    assert len(codes) == 10 and len(set(codes)) == 10
    device = RecoveryCodeDevice.objects.get(user=user)
    assert all(code not in str(device.code_hashes) for code in codes)
    assert mfa.mfa_verify(user=user, token=codes[0].upper()).ok
    assert RecoveryCodeDevice.objects.get(user=user).remaining == 9
    reused = mfa.mfa_verify(user=user, token=codes[0])
    assert (reused.ok, reused.failure) == (False, "bad_code")


def test_regenerating_recovery_codes_invalidates_old_ones(no_throttle):
    user = UserFactory()
    old = mfa.recovery_codes_regenerate(user=user)
    new = mfa.recovery_codes_regenerate(user=user)
    assert not mfa.mfa_verify(user=user, token=old[1]).ok
    assert mfa.mfa_verify(user=user, token=new[1]).ok


def test_recovery_code_of_another_user_does_not_work(no_throttle):
    alice, bob = UserFactory(), UserFactory()
    alice_codes = mfa.recovery_codes_regenerate(user=alice)
    mfa.recovery_codes_regenerate(user=bob)
    assert not mfa.mfa_verify(user=bob, token=alice_codes[0]).ok


def test_last_authenticator_cannot_be_removed():
    device = TOTPDeviceFactory()
    with pytest.raises(mfa.MFAError, match="only authenticator"):
        mfa.totp_device_remove(user=device.user, device_id=device.pk)
    second = TOTPDeviceFactory(user=device.user)
    mfa.totp_device_remove(user=device.user, device_id=device.pk)
    assert list(TOTPDevice.objects.filter(user=device.user)) == [second]


def test_cannot_remove_another_users_device():
    mine, theirs = TOTPDeviceFactory(), TOTPDeviceFactory()
    TOTPDeviceFactory(user=theirs.user)
    with pytest.raises(mfa.MFAError):
        mfa.totp_device_remove(user=mine.user, device_id=theirs.pk)


def test_verify_page_errors_for_wrong_and_replayed_codes(client, no_throttle):
    membership = MembershipFactory()
    device = TOTPDeviceFactory(user=membership.user)
    client.post(reverse("accounts:login"), {"username": membership.user.email, "password": DEFAULT_PASSWORD})
    response = client.post(reverse("accounts:mfa_verify"), {"code": "000000" if totp_code(device) != "000000" else "1"})
    assert response.status_code == 400
    assert b"not valid" in response.content
    assert b'aria-invalid="true"' in response.content
    code = totp_code(device)
    assert client.post(reverse("accounts:mfa_verify"), {"code": code}).status_code == 302
    # A second browser replays the same code.
    other = client.__class__()
    other.post(reverse("accounts:login"), {"username": membership.user.email, "password": DEFAULT_PASSWORD})
    response = other.post(reverse("accounts:mfa_verify"), {"code": code})
    assert response.status_code == 400
    assert b"already used" in response.content
    reasons = list(
        SignInEvent.objects.filter(user=membership.user, factor="totp")
        .order_by("id")
        .values_list("failure_reason", flat=True)
    )
    assert reasons == ["bad_code", "", "replayed_code"]


def test_recovery_code_signs_in_once(client, no_throttle):
    membership = MembershipFactory()
    TOTPDeviceFactory(user=membership.user)
    codes = mfa.recovery_codes_regenerate(user=membership.user)
    for expected in (302, 400):
        client.logout()
        client.post(reverse("accounts:login"), {"username": membership.user.email, "password": DEFAULT_PASSWORD})
        response = client.post(reverse("accounts:mfa_verify"), {"code": codes[3]})
        assert response.status_code == expected
    assert SignInEvent.objects.filter(user=membership.user, factor="recovery", succeeded=True).count() == 1


def test_changing_devices_requires_recent_reverification(client, no_throttle):
    user = UserFactory()
    device = TOTPDeviceFactory(user=user)
    other = TOTPDeviceFactory(user=user)
    verified_client(client, user, recent_mfa=False)
    for url in (reverse("accounts:mfa_enroll"),):
        response = client.get(url)
        assert response.status_code == 302
        assert "reason=sensitive" in response["Location"]
    response = client.post(reverse("accounts:mfa_devices"), {"device": other.pk})
    assert "reason=sensitive" in response["Location"]
    response = client.post(reverse("accounts:recovery_codes"))
    assert "reason=sensitive" in response["Location"]
    assert TOTPDevice.objects.filter(user=user).count() == 2

    page = client.get(reverse("accounts:mfa_verify") + "?reason=sensitive&next=/accounts/mfa/devices/")
    assert page.status_code == 200 and b"Confirm it" in page.content
    response = client.post(
        reverse("accounts:mfa_verify"),
        {"code": totp_code(device), "reason": "sensitive", "next": "/accounts/mfa/devices/"},
    )
    assert response["Location"] == "/accounts/mfa/devices/"
    response = client.post(reverse("accounts:mfa_devices"), {"device": other.pk})
    assert response["Location"] == reverse("accounts:mfa_devices")
    assert list(TOTPDevice.objects.filter(user=user)) == [device]
    response = client.post(reverse("accounts:recovery_codes"))
    assert response.status_code == 200 and response.content.count(b"<code>") == 10


def test_adding_second_authenticator_keeps_recovery_codes(client, no_throttle):
    user = UserFactory()
    TOTPDeviceFactory(user=user)
    mfa.recovery_codes_regenerate(user=user)
    verified_client(client, user)
    client.get(reverse("accounts:mfa_enroll"))
    pending = TOTPDevice.objects.get(user=user, confirmed=False)
    response = client.post(reverse("accounts:mfa_enroll"), {"code": totp_code(pending), "name": "Tablet"})
    assert response["Location"] == reverse("accounts:mfa_devices")
    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 2
    assert RecoveryCodeDevice.objects.get(user=user).remaining == 10


def test_enrollment_with_wrong_code_shows_error(client, no_throttle):
    user = UserFactory()
    client.force_login(user)
    client.get(reverse("accounts:mfa_enroll"))
    pending = TOTPDevice.objects.get(user=user, confirmed=False)
    wrong = "000000" if totp_code(pending) != "000000" else "111111"
    response = client.post(reverse("accounts:mfa_enroll"), {"code": wrong})
    assert response.status_code == 400
    assert b"did not match" in response.content
    assert DEVICE_ID_SESSION_KEY not in client.session
    # The same secret is kept while the person retries.
    client.get(reverse("accounts:mfa_enroll"))
    assert TOTPDevice.objects.get(user=user, confirmed=False).pk == pending.pk


def test_verify_page_offers_one_time_code_autocomplete(client):
    user = UserFactory()
    TOTPDeviceFactory(user=user)
    client.force_login(user)
    response = client.get(reverse("accounts:mfa_verify"))
    assert b'autocomplete="one-time-code"' in response.content
