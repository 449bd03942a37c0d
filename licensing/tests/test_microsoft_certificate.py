"""Certificate credentials: the portal's client signs client assertions with the partner app's
certificate (Microsoft's recommendation for partner applications) instead of sending a secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from licensing.microsoft import errors

pytestmark = pytest.mark.emulator


def _certificate(tmp_path, name: str, *, expired: bool = False) -> tuple[str, str, str]:
    """(certificate PEM, path of the private key file, SHA-1 thumbprint) of a fresh self-signed cert."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = datetime.now(UTC) - (timedelta(days=40) if expired else timedelta(minutes=5))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal-partner-app")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=30)).sign(key, hashes.SHA256()))
    key_path = tmp_path / f"{name}.key"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(), str(key_path),
            cert.fingerprint(hashes.SHA1()).hex().upper())


def _use_certificate(settings, key_path: str, thumbprint: str) -> None:
    settings.MS_CLIENT_SECRET = ""
    settings.MS_CLIENT_CERTIFICATE_KEY_PATH = key_path
    settings.MS_CLIENT_CERTIFICATE_THUMBPRINT = thumbprint


def test_the_client_authenticates_with_a_registered_certificate(emulator, make_client, settings, tmp_path):
    pem, key_path, thumbprint = _certificate(tmp_path, "app")
    emulator.register_app_certificate(pem)
    _use_certificate(settings, key_path, thumbprint)
    ms = make_client()
    products = ms.partner_center.list_products(country="US")
    assert products
    token_calls = emulator.requests_log(method="POST", path="*/oauth2/v2.0/token")
    assert token_calls
    for call in token_calls:
        assert '"client_assertion": "***"' in call["body"] and "client_secret" not in call["body"]


@pytest.mark.parametrize("case", ["unknown", "expired", "wrong_key"])
def test_a_refused_certificate_is_a_typed_authentication_failure(case, emulator, make_client, settings, tmp_path):
    pem, key_path, thumbprint = _certificate(tmp_path, "app", expired=case == "expired")
    if case != "unknown":
        emulator.register_app_certificate(pem)
    if case == "wrong_key":
        _, key_path, _ = _certificate(tmp_path, "other")
    _use_certificate(settings, key_path, thumbprint)
    with pytest.raises(errors.AuthenticationFailed) as refused:
        make_client().partner_center.list_products(country="US")
    assert refused.value.code == "700027"
    assert {"unknown": "not registered", "expired": "expired", "wrong_key": "signature"}[case] in str(refused.value)
