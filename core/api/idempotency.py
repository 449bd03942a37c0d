"""``Idempotency-Key`` for POST requests, backed by a unique constraint.

Keys are the caller's own (one API key, or one signed-in user), within its organisation.
The first request with a key inserts an in-flight record in its own committed
transaction, runs, then stores its response. A retry with the same key and the
same request gets that response again (``Idempotent-Replayed: true``); a different
request under the same key is refused (422); a retry while the first is still
running is refused (409). A server error releases the key so the client may retry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from core.models import IdempotencyRecord
from core.tenancy import tenant_context, unscoped_no_tenant

from .errors import ApiError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotentReplay(Exception):
    """Carries the stored response out of the view's ``initial()``."""

    def __init__(self, response: Response):
        super().__init__("idempotent replay")
        self.response = response


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def caller_of(actor) -> str:
    """Whose keys these are: the API key, or the signed-in user (what the API views call the actor)."""
    kind = "api_key" if hasattr(actor, "prefix") else "user"
    return f"{kind}:{actor.pk}"


def validate_key(raw: str) -> str:
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ApiError(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            code="invalid_idempotency_key",
        )
    return key


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response_body, status=record.status_code)
    response[REPLAYED_HEADER] = "true"
    return response


def _reused() -> ApiError:
    return ApiError(
        f"This {HEADER} was already used for a different request. Use a new key for a new request.",
        code="idempotency_key_reused",
        status_code=422,
    )


def _in_progress() -> ApiError:
    return ApiError(
        f"A request with this {HEADER} is still being processed. Retry after it finishes.",
        code="idempotency_request_in_progress",
        status_code=409,
    )


@dataclass
class IdempotencyClaim:
    """The in-flight record this request owns until it stores or releases it."""

    organization: object
    record_id: object

    def store(self, response) -> None:
        if response.status_code >= 500:
            self.release()
            return
        body = json.loads(json.dumps(response.data, cls=JSONEncoder)) if getattr(response, "data", None) else None
        with tenant_context(self.organization):
            record = IdempotencyRecord.objects.filter(pk=self.record_id).first()
            if record is None:
                return
            record.status_code = response.status_code
            record.response_body = body
            record.completed_at = timezone.now()
            record.save(update_fields=["status_code", "response_body", "completed_at", "updated_at"])

    def release(self) -> None:
        with tenant_context(self.organization):
            IdempotencyRecord.objects.filter(pk=self.record_id, completed_at=None).delete()


def claim(*, organization, caller: str, key: str, fingerprint: str) -> IdempotencyClaim:
    """Own ``key`` for this request, or raise: a replay, 422 (different request) or 409 (in flight).

    Must run outside any transaction so the in-flight record is committed and
    visible to a concurrent duplicate before the handler starts.
    """
    now = timezone.now()
    for _attempt in range(2):
        with tenant_context(organization):
            existing = IdempotencyRecord.objects.filter(caller=caller, key=key).first()
            if existing is not None and existing.expires_at <= now:
                existing.delete()
                existing = None
            if existing is not None:
                if existing.fingerprint != fingerprint:
                    raise _reused()
                if existing.completed_at is None:
                    raise _in_progress()
                raise IdempotentReplay(_replay(existing))
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        organization=organization,
                        caller=caller,
                        key=key,
                        fingerprint=fingerprint,
                        expires_at=now + KEY_TTL,
                    )
            except IntegrityError:
                # A concurrent duplicate inserted first; look again to answer as it deserves.
                continue
        return IdempotencyClaim(organization=organization, record_id=record.pk)
    raise _in_progress()


def purge_expired(*, batch_size: int = 1000) -> int:
    """Delete expired records (system sweep across organisations), in id-ordered batches."""
    deleted = 0
    while True:
        with unscoped_no_tenant():
            ids = list(
                IdempotencyRecord.unscoped_objects.filter(expires_at__lte=timezone.now())
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return deleted
            deleted += IdempotencyRecord.unscoped_objects.filter(pk__in=ids).delete()[0]
