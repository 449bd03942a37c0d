"""Certificate credentials: client assertions signed with a certificate registered on the app.

Entra ID accepts, instead of a client secret, a JWT (RFC 7523) in ``client_assertion`` with
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``, whose header
names the certificate by thumbprint (``x5t``: base64url SHA-1, or ``x5t#S256``: base64url SHA-256)
and whose claims are ``aud`` (the token endpoint), ``iss`` = ``sub`` = the client id, ``exp``,
``nbf`` and ``jti``. Registered certificates live in the state's meta table (``POST
/_emulator/app-certificates``), as an app registration's "Certificates" blade would hold them.
The AADSTS codes are the ones Entra ID answers with (reference: Microsoft Learn, *AADSTS error
codes*): 700027 unknown key, expired key or bad signature; 700024 assertion outside its time
range; 700021 assertion issuer/subject not the client id; 700023 wrong audience.
"""

import base64
import hashlib
from datetime import UTC, datetime

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .responses import entra_error

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
META_KEY = "app_certificates"
ALGORITHMS = ["RS256", "PS256"]
SKEW_SECONDS = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def register(state, pem: str) -> dict:
    """Add a PEM certificate to the app registration; returns its description."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    der = cert.public_bytes(Encoding.DER)
    entry = {"x5t": _b64url(hashlib.sha1(der).digest()),  # noqa: S324 - x5t is SHA-1 by definition
             "x5t#S256": _b64url(hashlib.sha256(der).digest()),
             "thumbprint": hashlib.sha1(der).hexdigest().upper(),  # noqa: S324
             "notBefore": cert.not_valid_before_utc.isoformat(),
             "notAfter": cert.not_valid_after_utc.isoformat(), "pem": pem}
    registered = [c for c in state.meta(META_KEY) or [] if c["x5t"] != entry["x5t"]]
    state.set_meta(META_KEY, [*registered, entry])
    return {k: v for k, v in entry.items() if k != "pem"}


def registered(state) -> list[dict]:
    return [{k: v for k, v in c.items() if k != "pem"} for c in state.meta(META_KEY) or []]


def _invalid(code: int, message: str):
    return entra_error(401, "invalid_client", code, message)


def verify_assertion(state, assertion: str, *, client_id: str, token_url: str, now: datetime) -> None:
    """Raise an Entra-shaped ApiError unless ``assertion`` authenticates ``client_id``."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise _invalid(700027, "Client assertion failed signature validation. "
                               "[Reason - The assertion is not a valid JWT.]") from None
    field = "x5t#S256" if header.get("x5t#S256") else "x5t"
    # Clients differ on base64url padding (msal keeps it); the thumbprint is the same.
    key_id = str(header.get(field) or "").rstrip("=")
    cert = next((c for c in state.meta(META_KEY) or [] if key_id and c[field] == key_id), None)
    if cert is None:
        raise _invalid(700027, "The certificate with identifier used to sign the client assertion is not "
                               f"registered on application. [Reason - The key was not found., Thumbprint "
                               f"of key used by client: '{key_id}']")
    if datetime.fromisoformat(cert["notAfter"]) < now or datetime.fromisoformat(cert["notBefore"]) > now:
        raise _invalid(700027, "Client assertion contains an invalid signature. [Reason - The key used is "
                               f"expired., Thumbprint of key used by client: '{key_id}']")
    public_key = x509.load_pem_x509_certificate(cert["pem"].encode()).public_key()
    try:
        claims = jwt.decode(assertion, public_key, algorithms=ALGORITHMS,
                            options={"verify_exp": False, "verify_nbf": False, "verify_aud": False,
                                     "verify_iat": False, "require": ["aud", "iss", "sub", "exp"]})
    except jwt.InvalidSignatureError:
        raise _invalid(700027, "Client assertion failed signature validation. [Reason - The provided "
                               "signature value did not match the expected signature value.]") from None
    except jwt.PyJWTError as exc:
        raise _invalid(700027, f"Client assertion failed signature validation. [Reason - {exc}.]") from None
    if claims["iss"] != client_id or claims["sub"] != client_id:
        raise _invalid(700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
    if claims["aud"] != token_url and token_url not in (claims["aud"] if isinstance(claims["aud"], list) else []):
        raise _invalid(700023, f"Client assertion audience claim does not match Realm issuer. "
                               f"Expected '{token_url}'.")
    # The client stamps its assertion with its own (real) clock, so the time range is checked
    # against wall-clock time with Entra's five minutes of skew, not the emulator clock, which
    # tests move forward; the certificate's own validity above follows the emulator clock.
    wall = datetime.now(UTC)
    stamp = wall.timestamp()
    if float(claims["exp"]) <= stamp - SKEW_SECONDS or float(claims.get("nbf", stamp)) > stamp + SKEW_SECONDS:
        raise _invalid(700024, "Client assertion is not within its valid time range. "
                               f"Current time: {wall:%Y-%m-%dT%H:%M:%S}Z.")
