"""API key services. The secret is shown once, at creation; only its hash is stored.

A key is ``clp_<prefix>_<secret>``: the prefix (public, unique) finds the row, the
secret is checked against the stored SHA-256 (see ``accounts.authentication``).
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import audit_record

from .authentication import API_KEY_PREFIX, hash_api_secret
from .models import ApiKey, Organization, User
from .team import TeamError, audit_actor, ensure_can_grant

PREFIX_LENGTH = 10
# No "_" in the prefix: it separates the key's parts.
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
SECRET_BYTES = 32


def _new_prefix() -> str:
    return "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))


def _new_secret() -> str:
    # token_urlsafe may contain "_", which would make the key ambiguous to split.
    return secrets.token_urlsafe(SECRET_BYTES).replace("_", "-")


@transaction.atomic
def api_key_create(
    *, organization: Organization, name: str, role: str, expires_at: datetime | None, actor: User
) -> tuple[ApiKey, str]:
    """Create a key and return it with the plaintext, which is never stored or shown again.

    The key's role may not exceed the creator's. Creating keys needs a recent second
    factor, which the dashboard view enforces; the API cannot create keys.
    """
    try:
        ensure_can_grant(actor=actor, organization=organization, role=role)
    except TeamError as exc:
        raise ValidationError({"role": exc.message}) from exc
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Choose an expiry date in the future."})
    secret = _new_secret()
    for _attempt in range(5):
        key = ApiKey(
            organization=organization,
            name=(name or "").strip(),
            prefix=_new_prefix(),
            secret_hash=hash_api_secret(secret),
            role=role,
            expires_at=expires_at,
            created_by=actor,
        )
        key.full_clean(exclude=["prefix"])
        try:
            with transaction.atomic():
                key.save()
            break
        except IntegrityError:
            continue  # prefix collision: 36^10 makes this rare, and the unique constraint makes it safe
    else:
        raise RuntimeError("Could not generate a unique API key prefix.")
    audit_record(
        actor=audit_actor(actor),
        action="api_key.created",
        organization=organization,
        target=key,
        metadata={"prefix": key.prefix, "role": role, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    return key, f"{API_KEY_PREFIX}_{key.prefix}_{secret}"


@transaction.atomic
def api_key_revoke(*, organization: Organization, api_key_id, actor: User | ApiKey) -> ApiKey:
    key = ApiKey.objects.for_org(organization).select_for_update().filter(pk=api_key_id).first()
    if key is None:
        raise ApiKey.DoesNotExist("No such API key.")
    if key.revoked_at is not None:
        return key
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at", "updated_at"])
    audit_record(
        actor=audit_actor(actor),
        action="api_key.revoked",
        organization=organization,
        target=key,
        metadata={"prefix": key.prefix},
    )
    return key
