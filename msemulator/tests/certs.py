"""Self-signed certificates for certificate-credential tests (generated, never stored)."""

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def app_certificate(*, days_valid: int = 365, expired: bool = False) -> tuple[str, str, str]:
    """(certificate PEM, private key PEM, SHA-1 thumbprint in hex) of a fresh self-signed certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    start = now - timedelta(days=days_valid + 2) if expired else now - timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal-partner-app")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=days_valid)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return (cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem,
            cert.fingerprint(hashes.SHA1()).hex().upper())  # x5t is SHA-1 by definition
