"""Privacy classification of django-otp-webauthn's models (passkeys belong to portal users).

They live in the plugin's own app, so core.checks (which checks project apps only) would not
ask for them; they hold security data about people, so they are declared here all the same,
and accounts/tests/test_passkeys.py fails if the plugin grows a field this does not classify.
Nothing here is encrypted: a credential's public key and id are not secrets (knowing them does
not let anyone sign in), and every row goes with its user (on_delete=CASCADE).
"""

from django_otp_webauthn.models import WebAuthnAttestation, WebAuthnCredential, WebAuthnUserHandle

from core.registry import Category, Personal, Subject, declare

_SECURITY = Personal(Category.SECURITY)

declare(
    WebAuthnCredential,
    subject=Subject.PORTAL_USER,
    subject_lookup="user",
    personal={
        "credential_id": _SECURITY,
        "credential_id_sha256": _SECURITY,
        "public_key": _SECURITY,
        "aaguid": _SECURITY,  # the authenticator's make and model, when it tells
        "last_used_at": _SECURITY,
    },
    not_personal=[
        "user",
        "name",
        "confirmed",
        "credential_type",
        "transports",
        "sign_count",
        "backup_eligible",
        "backup_state",
        "discoverable",
    ],
)

declare(
    WebAuthnAttestation,
    subject=Subject.PORTAL_USER,
    subject_lookup="credential__user",
    personal={"data": _SECURITY, "client_data_json": _SECURITY},
    not_personal=["credential", "fmt"],
)

declare(
    WebAuthnUserHandle,
    subject=Subject.PORTAL_USER,
    subject_lookup="user",
    personal={"handle_hex": _SECURITY},
    not_personal=["user"],
)
