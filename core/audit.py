"""The audit chain: the state changes services record, HMAC-chained.

Services record their writes here (``audit_record`` naming the actor). Staff reads and changes in
the admin are recorded through one path, ``accounts.admin_grants.GrantScopedAdmin``, each naming
the staff grant that allowed it; inside it, ``staff_grants_in_force`` adds that grant to the events
services write for staff too.

Each event's hash is HMAC(key, previous hash + canonical event). The key lives
outside the database (AUDIT_HMAC_KEY), so someone with write access to the
tables cannot edit or remove an event without ``verify_audit`` noticing. The chain
head row is signed too, but a database superuser can still delete everything or put
an old, validly signed head back after truncating the tail; so after each commit the
head is also written as a signed checkpoint outside the database
(``core.audit_anchor``), and ``verify_chain`` compares the chain against the latest one.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit_anchor import checkpoint_append, checkpoints_read
from core.requestid import get_client_ip, get_request_id

from .models import AuditChainHead, AuditEvent

logger = logging.getLogger(__name__)

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


_staff_grants: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("staff_grants", default=None)


@contextmanager
def staff_grants_in_force(grant_ids_by_org: dict[str, str]) -> Iterator[None]:
    """Inside, a staff actor's event in an organisation names the grant (organisation id -> grant id)
    that allowed it, unless the actor already names one."""
    token = _staff_grants.set(grant_ids_by_org)
    try:
        yield
    finally:
        _staff_grants.reset(token)


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
    organization_id = getattr(organization, "pk", organization)
    metadata = {**actor.metadata, **(metadata or {})}
    grants = _staff_grants.get()
    if actor.type == AuditEvent.ActorType.STAFF and grants and "grant" not in metadata and organization_id:
        grant_id = grants.get(str(organization_id))
        if grant_id:
            metadata["grant"] = grant_id
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        event = AuditEvent(
            sequence=head.sequence + 1,
            occurred_at=timezone.now(),
            organization_id=organization_id,
            actor_type=actor.type,
            actor_id=actor.id,
            action=action,
            target_type=type(target).__name__ if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            ip_address=get_client_ip(),
            request_id=get_request_id() if get_request_id() != "-" else "",
            metadata=metadata,
            previous_hash=head.hash,
        )
        event.hash = compute_hash(head.hash, event)
        event.save()
        head.sequence = event.sequence
        head.hash = event.hash
        head.signature = _sign_head(head.sequence, head.hash)
        head.save()
        transaction.on_commit(checkpoint_after_commit)
        return event


_checkpointed: dict[Path, int] = {}
_checkpoint_lock = Lock()


def checkpoint_after_commit() -> None:
    """Anchor the committed head outside the database: one checkpoint per commit batch.

    Every ``audit_record`` in a transaction registers this; the first callback after the commit
    writes the head as committed, and the others find it already written by this process.
    A failure to write is logged, never raised: the business transaction has already committed.
    """
    head = AuditChainHead.objects.filter(pk=1).values_list("sequence", "hash").first()
    if head is None:
        return
    sequence, head_hash = head
    path = Path(settings.AUDIT_CHECKPOINT_PATH)
    with _checkpoint_lock:
        if _checkpointed.get(path, 0) >= sequence:
            return
        try:
            checkpoint_append(key=_key(), sequence=sequence, head_hash=head_hash)
        except OSError:
            logger.exception("audit checkpoint not written", extra={"sequence": sequence, "path": str(path)})
            return
        _checkpointed[path] = sequence


@dataclass(frozen=True)
class AuditProblem:
    sequence: int | None
    problem: str

    def __str__(self) -> str:
        return self.problem if self.sequence is None else f"event #{self.sequence}: {self.problem}"


def verify_chain(batch_size: int = 2000) -> Iterator[AuditProblem]:
    """Walk the whole chain in sequence order and yield every inconsistency found.

    The chain must also reach the latest checkpoint written outside the database, with the
    same hash at that sequence: deleting everything, or truncating and restoring an old head,
    is caught there.
    """
    checkpoint, bad_lines = checkpoints_read(key=_key())
    for line in bad_lines:
        yield AuditProblem(None, line)
    checkpoint_hash = None
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
            if checkpoint is not None and event.sequence == checkpoint.sequence:
                checkpoint_hash = event.hash
            previous_hash = event.hash
            expected_sequence = event.sequence + 1
            last_sequence = event.sequence
        cursor = batch[-1].sequence
    if checkpoint is not None:
        anchored = f"the checkpoint of {checkpoint.at.isoformat()} recorded event #{checkpoint.sequence}"
        if last_sequence == 0:
            yield AuditProblem(None, f"the chain is empty but {anchored} (the chain was deleted)")
        elif last_sequence < checkpoint.sequence:
            yield AuditProblem(
                checkpoint.sequence,
                f"missing: the chain ends at event #{last_sequence} but {anchored} "
                "(the tail was removed and an older head put back)",
            )
        elif checkpoint_hash is not None and not hmac.compare_digest(checkpoint_hash, checkpoint.hash):
            yield AuditProblem(checkpoint.sequence, f"hash differs from {anchored} (the chain was rewritten)")
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


def latest_checkpoint():
    """The highest valid checkpoint outside the database, or None before the first commit."""
    return checkpoints_read(key=_key())[0]
