"""Second-factor services: authenticator enrollment, verification, recovery codes.

Secrets never leave these functions except once, to the person enrolling: the TOTP
secret for their app and the recovery codes as plain text on the page.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass

from django.utils import timezone
from django_otp.models import VerifyNotAllowed
from django_otp.util import random_hex
from django_otp_webauthn.models import WebAuthnCredential

from core.audit import Actor, audit_record
from core.tenancy import person_context

from .models import RecoveryCodeDevice, TOTPDevice, User

RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)
RECOVERY_CODE_LENGTH = 12
MAX_TOKEN_LENGTH = 32


class MFAError(Exception):
    def __init__(self, message: str, *, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Verification:
    device: TOTPDevice | RecoveryCodeDevice | None
    factor: str  # "totp" or "recovery"
    failure: str = ""  # a security.SignInEvent.Reason value when device is None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.device is not None


def _in_own_context(func):
    """Run ``func(..., user=...)`` as one transaction in the person's own row-level-security context:
    their devices and passkeys are visible to the application role there only (decision 035)."""

    @functools.wraps(func)
    def wrapper(*args, user: User, **kwargs):
        with person_context(user):
            return func(*args, user=user, **kwargs)

    return wrapper


def has_confirmed_totp(user: User) -> bool:
    with person_context(user):
        return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@_in_own_context
def totp_enrollment_start(*, user: User, device_id: int | None = None) -> TOTPDevice:
    """The unconfirmed device being enrolled: reuse the one in progress, or make a new secret."""
    if device_id is not None:
        device = TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()
        if device is not None:
            device.user = user  # the page names the account in the QR code: no second read of the user row
            return device
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False, key=random_hex(20))


def _format_code(raw: str) -> str:
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _new_recovery_codes() -> list[str]:
    return [
        _format_code("".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH)))
        for _ in range(RECOVERY_CODE_COUNT)
    ]


def _store_recovery_codes(user: User) -> list[str]:
    device = RecoveryCodeDevice.objects.select_for_update().filter(user=user).first() or RecoveryCodeDevice(
        user=user, name="Recovery codes", confirmed=True
    )
    codes = _new_recovery_codes()
    device.code_hashes = [device.hash_code(code) for code in codes]
    device.throttle_reset(commit=False)
    device.full_clean()
    device.save()
    return codes


@_in_own_context
def totp_enrollment_confirm(*, user: User, device_id: int, token: str, name: str = "") -> tuple[TOTPDevice, list[str]]:
    """Confirm the new authenticator with a code from it.

    Returns the device and, on the first enrollment, the recovery codes to show once.
    """
    device = TOTPDevice.objects.select_for_update().filter(pk=device_id, user=user, confirmed=False).first()
    if device is None:
        raise MFAError("This setup has expired. Start again to get a new QR code.", code="enrollment_expired")
    allowed, info = device.verify_is_allowed()
    if not allowed:
        raise MFAError(_throttle_message(device, info), code="throttled")
    if not device.verify_token("".join((token or "").split())[:MAX_TOKEN_LENGTH]):
        raise MFAError(
            "That code did not match. Enter the 6-digit code your app shows now, and check your phone's clock.",
            code="bad_code",
        )
    first = not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    device.confirmed = True
    device.name = (name or "").strip()[:64] or device.name
    device.full_clean()
    device.save(update_fields=["confirmed", "name"])
    codes = _store_recovery_codes(user) if first or not RecoveryCodeDevice.objects.filter(user=user).exists() else []
    audit_record(actor=Actor.user(user), action="mfa.totp_added", target=device, metadata={"first": first})
    return device, codes


@_in_own_context
def totp_device_remove(*, user: User, device_id: int) -> None:
    """Remove an authenticator. The last one cannot go: MFA is mandatory for everyone."""
    devices = list(TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"))
    device = next((d for d in devices if d.pk == device_id), None)
    if device is None:
        raise MFAError("That authenticator was not found.", code="not_found")
    if len(devices) == 1:
        raise MFAError(
            "This is your only authenticator. Add a new one before removing it: a second factor is required.",
            code="last_device",
        )
    device.delete()
    audit_record(actor=Actor.user(user), action="mfa.totp_removed", target=user, metadata={"device": device_id})


@_in_own_context
def passkey_remove(*, user: User, device_id: int) -> None:
    """Remove a passkey. Any can go: the authenticator app stays as the required second factor."""
    deleted, _ = WebAuthnCredential.objects.filter(user=user, pk=device_id).delete()
    if not deleted:
        raise MFAError("That passkey was not found.", code="not_found")
    audit_record(actor=Actor.user(user), action="mfa.passkey_removed", target=user, metadata={"device": device_id})


@_in_own_context
def recovery_codes_regenerate(*, user: User) -> list[str]:
    """Replace every recovery code; the old ones stop working at once."""
    codes = _store_recovery_codes(user)
    audit_record(actor=Actor.user(user), action="mfa.recovery_codes_regenerated", target=user)
    return codes


def _throttle_message(device, info) -> str:
    if info and info.get("reason") == VerifyNotAllowed.N_FAILED_ATTEMPTS and device.throttling_failure_timestamp:
        delay = device.get_throttle_factor() * (2 ** (device.throttling_failure_count - 1))
        wait = int((device.throttling_failure_timestamp - timezone.now()).total_seconds() + delay) + 1
        return f"Too many wrong codes. Wait {max(wait, 1)} seconds and try again."
    return "Too many wrong codes. Wait a moment and try again."


def looks_like_totp(token: str) -> bool:
    return token.isdigit() and len(token) in (6, 8)


@_in_own_context
def mfa_verify(*, user: User, token: str) -> Verification:
    """Check a code from an authenticator app or a recovery code. Every device row is locked
    while checking, so a code cannot be accepted twice by concurrent requests."""
    token = "".join((token or "").split())[:MAX_TOKEN_LENGTH]
    if looks_like_totp(token):
        devices = list(TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"))
        usable = [d for d in devices if d.verify_is_allowed()[0]]
        if devices and not usable:
            device = devices[0]
            return Verification(None, "totp", "throttled", _throttle_message(device, device.verify_is_allowed()[1]))
        for device in usable:
            if device.verify_token(token):
                return Verification(device=device, factor="totp")
        if any(d.is_replay(token) for d in devices):
            return Verification(
                None, "totp", "replayed_code", "That code was already used. Wait for your app to show a new one."
            )
        return Verification(
            None,
            "totp",
            "bad_code",
            "That code is not valid. Enter the current code from your app (it changes every 30 seconds).",
        )
    recovery = RecoveryCodeDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    if recovery is not None:
        allowed, info = recovery.verify_is_allowed()
        if not allowed:
            return Verification(None, "recovery", "throttled", _throttle_message(recovery, info))
        if recovery.verify_token(token):
            audit_record(
                actor=Actor.user(user),
                action="mfa.recovery_code_used",
                target=user,
                metadata={"remaining": recovery.remaining},
            )
            return Verification(device=recovery, factor="recovery")
    return Verification(
        None, "recovery", "bad_code", "That recovery code is not valid or was already used. Each code works once."
    )
