"""Test helpers other apps use to act as a fully signed-in, MFA-verified user."""

import time

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP

from accounts.models import TOTPDevice
from accounts.reauth import SESSION_KEY as MFA_VERIFIED_AT
from core.tenancy import person_context

from .factories import TOTPDeviceFactory


def verified_client(client, user, *, recent_mfa: bool = True):
    """Log ``client`` in as ``user`` with a verified second factor (creating a TOTP device if needed).

    ``recent_mfa`` also counts as a re-verification just now, so sensitive actions pass;
    pass False to test the re-verification redirect.
    """
    with person_context(user):  # devices have row-level security per person (tests/test_rls.py runs as that role)
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDeviceFactory(user=user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    if recent_mfa:
        session[MFA_VERIFIED_AT] = int(time.time())
    else:
        session.pop(MFA_VERIFIED_AT, None)
    session.save()
    return client


def totp_code(device: TOTPDevice, *, at: float | None = None) -> str:
    """The code an authenticator app would show for ``device`` at time ``at`` (default now)."""
    totp = TOTP(device.bin_key, device.step, 0, device.digits, device.drift)
    totp.time = time.time() if at is None else at
    return f"{totp.token():0{device.digits}d}"
