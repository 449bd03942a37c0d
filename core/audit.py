"""The audit chain: every state change and every staff read, HMAC-chained.

Each event's hash is HMAC(key, previous hash + canonical event). The key lives
outside the database (AUDIT_HMAC_KEY), so someone with write access to the
tables cannot rewrite history without ``verify_audit`` noticing. The chain head
is itself signed so that deleting the newest events (truncation) is detected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.requestid import get_client_ip, get_request_id

from .models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Actor:
    type: str
    id: str = ""
    metadata: dict = field(default_factory=dict)

    @classmethod
    def user(cls, user) -> Actor:
        return cls(AuditEvent.ActorType.USER, str(user.pk))

    @classmethod
    def staff(cls, user, grant=None) -> Actor:
        return cls(AuditEvent.ActorType.STAFF, str(user.pk), {"grant": str(grant.pk)} if grant else {})

    @classmethod
    def api_key(cls, key) -> Actor:
        return cls(AuditEvent.ActorType.API_KEY, str(key.pk))

    @classmethod
    def system(cls, component: str) -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, component)


def _key() -> bytes:
    raw = settings.AUDIT_HMAC_KEY
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError:
        return raw.encode()


def _canonical(event: AuditEvent) -> bytes:
    body = {
        "sequence": event.sequence,
        "occurred_at": event.occurred_at.isoformat(),
        "organization": str(event.organization_id or ""),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "ip_address": event.ip_address or "",
        "request_id": event.request_id,
        "metadata": event.metadata,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def compute_hash(previous_hash: str, event: AuditEvent) -> str:
    return hmac.new(_key(), previous_hash.encode() + b"|" + _canonical(event), hashlib.sha256).hexdigest()


def _sign_head(sequence: int, head_hash: str) -> str:
    return hmac.new(_key(), f"head|{sequence}|{head_hash}".encode(), hashlib.sha256).hexdigest()


def audit_record(
    *,
    actor: Actor,
    action: str,
    organization=None,
    target=None,
    metadata: dict | None = None,
) -> AuditEvent:
    """Append an event to the chain, inside the caller's transaction."""
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        event = AuditEvent(
            sequence=head.sequence + 1,
            occurred_at=timezone.now(),
            organization_id=getattr(organization, "pk", organization),
            actor_type=actor.type,
            actor_id=actor.id,
            action=action,
            target_type=type(target).__name__ if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            ip_address=get_client_ip(),
            request_id=get_request_id() if get_request_id() != "-" else "",
            metadata={**actor.metadata, **(metadata or {})},
            previous_hash=head.hash,
        )
        event.hash = compute_hash(head.hash, event)
        event.save()
        head.sequence = event.sequence
        head.hash = event.hash
        head.signature = _sign_head(head.sequence, head.hash)
        head.save()
        return event


@dataclass(frozen=True)
class AuditProblem:
    sequence: int
    problem: str

    def __str__(self) -> str:
        return f"event #{self.sequence}: {self.problem}"


def verify_chain(batch_size: int = 2000) -> Iterator[AuditProblem]:
    """Walk the whole chain in sequence order and yield every inconsistency found."""
    expected_sequence = 1
    previous_hash = GENESIS_HASH
    last_sequence = 0
    cursor = 0
    while True:
        batch = list(AuditEvent.unscoped_objects.filter(sequence__gt=cursor).order_by("sequence")[:batch_size])
        if not batch:
            break
        for event in batch:
            while expected_sequence < event.sequence:
                yield AuditProblem(expected_sequence, "missing (deleted)")
                expected_sequence += 1
            if event.previous_hash != previous_hash:
                yield AuditProblem(
                    event.sequence, "previous-hash link broken (an earlier event was altered or removed)"
                )
            if not hmac.compare_digest(compute_hash(event.previous_hash, event), event.hash):
                yield AuditProblem(event.sequence, "content does not match its hash (edited)")
            previous_hash = event.hash
            expected_sequence = event.sequence + 1
            last_sequence = event.sequence
        cursor = batch[-1].sequence
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        if last_sequence:
            yield AuditProblem(last_sequence, "chain head is missing")
        return
    if not hmac.compare_digest(_sign_head(head.sequence, head.hash), head.signature or ""):
        yield AuditProblem(head.sequence, "chain head signature invalid (head was tampered with)")
    if head.sequence > last_sequence:
        for missing in range(last_sequence + 1, head.sequence + 1):
            yield AuditProblem(missing, "missing (chain truncated)")
    elif head.hash != previous_hash and head.sequence == last_sequence:
        yield AuditProblem(head.sequence, "newest event does not match the chain head")
