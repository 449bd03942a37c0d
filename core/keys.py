"""Key management: rotate and destroy data keys, re-wrap them under a new master key.

These are the write paths behind the ``rotate_master_key``, ``reencrypt_fields`` and
``destroy_data_key`` commands, and behind erasure (crypto-shredding). Every change
is audited. See docs/decisions/001-field-encryption.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.apps import apps
from django.db import transaction
from django.utils import timezone

from .audit import Actor, audit_record
from .crypto import KeyScope, ciphertext_key_id, keyring, master_keys, unwrap_data_key, wrap_data_key
from .erasure_log import erasure_log_append
from .fields import Ciphertext, EncryptedField
from .models import DataKey
from .tenancy import unscoped_no_tenant

# Copies of decrypted data kept outside the database (a worker's search index, say) do not die with
# the key unless their owner hears of it. Apps register here in ready(); ground floor knows no app.
_scope_destroyed_hooks: list[Callable[[KeyScope], None]] = []


def on_scope_destroyed(hook: Callable[[KeyScope], None]) -> None:
    """Call ``hook(scope)`` inside the transaction that destroys a scope's data keys."""
    if hook not in _scope_destroyed_hooks:
        _scope_destroyed_hooks.append(hook)


def parse_scope(raw: str) -> KeyScope:
    """``org:<uuid>``, ``subject:<uuid>`` or ``system:<name>``, as written by KeyScope.__str__."""
    kind, sep, ident = raw.partition(":")
    if not sep or kind not in ("org", "subject", "system") or not ident:
        raise ValueError(f"Scope must look like 'org:<uuid>' or 'subject:<uuid>', got {raw!r}.")
    if kind in ("org", "subject"):
        ident = str(uuid.UUID(ident))
    return KeyScope(kind, ident)


@transaction.atomic
def data_key_rotate(*, scope: KeyScope, actor: Actor) -> DataKey:
    """Retire the scope's active data key (it still decrypts) and create a new active one."""
    retired = list(
        DataKey.objects.select_for_update()
        .filter(scope_kind=scope.kind, scope_id=scope.id, status=DataKey.Status.ACTIVE)
        .values_list("pk", flat=True)
    )
    DataKey.objects.filter(pk__in=retired).update(status=DataKey.Status.RETIRED, retired_at=timezone.now())
    keyring.forget_scope(scope)
    new_key = keyring.create_active(scope)
    keyring.forget_scope(scope)
    audit_record(
        actor=actor,
        action="data_key.rotated",
        organization=scope.id if scope.kind == "org" else None,
        target=new_key,
        metadata={"scope_kind": scope.kind, "retired": [str(pk) for pk in retired]},
    )
    return new_key


@transaction.atomic
def data_key_destroy(*, scope: KeyScope, actor: Actor) -> list[uuid.UUID]:
    """Crypto-shred a scope: wipe every one of its data keys, so its ciphertexts, backups included,
    can never be decrypted again. Irreversible."""
    keys = list(
        DataKey.objects.select_for_update()
        .filter(scope_kind=scope.kind, scope_id=scope.id)
        .exclude(status=DataKey.Status.DESTROYED)
        .values_list("pk", flat=True)
    )
    if keys:
        # Outside the database first, so a restore from an older backup can replay it (core.erasure_log).
        erasure_log_append(scope=str(scope), actor=f"{actor.type}:{actor.id}", at=timezone.now())
    DataKey.objects.filter(pk__in=keys).update(
        status=DataKey.Status.DESTROYED, wrapped_key=None, retired_at=timezone.now()
    )
    keyring.forget_scope(scope)
    for key_id in keys:
        keyring.forget_key(key_id)
    if keys:
        for hook in _scope_destroyed_hooks:
            hook(scope)
    audit_record(
        actor=actor,
        action="data_key.destroyed",
        organization=scope.id if scope.kind == "org" else None,
        metadata={"scope_kind": scope.kind, "scope_id": scope.id, "destroyed": [str(pk) for pk in keys]},
    )
    return keys


def data_keys_to_rewrap() -> tuple[str, object]:
    """The active master key id and the data keys still wrapped by another master key."""
    active_kid, _ = master_keys()
    pending = (
        DataKey.objects.exclude(master_kid=active_kid).exclude(status=DataKey.Status.DESTROYED).order_by("pk")
    )
    return active_kid, pending


@transaction.atomic
def data_keys_rewrap(*, key_ids: list[uuid.UUID], actor: Actor) -> int:
    """Re-wrap the given data keys under the active master key; already re-wrapped ones are skipped."""
    active_kid, _ = master_keys()
    rows = (
        DataKey.objects.select_for_update()
        .filter(pk__in=key_ids)
        .exclude(master_kid=active_kid)
        .exclude(status=DataKey.Status.DESTROYED)
        .order_by("pk")
    )
    rewrapped = []
    for row in rows:
        material = unwrap_data_key(row.master_kid, row.wrapped_key, row.pk)
        row.master_kid, row.wrapped_key = wrap_data_key(material, row.pk)
        row.save(update_fields=["master_kid", "wrapped_key"])
        rewrapped.append(str(row.pk))
    if rewrapped:
        audit_record(
            actor=actor,
            action="data_key.rewrapped",
            metadata={"master_kid": active_kid, "count": len(rewrapped), "keys": rewrapped},
        )
    return len(rewrapped)


def encrypted_fields(model) -> list:
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]


def encrypted_models(label: str | None = None) -> list[tuple[type, list]]:
    """Every installed model with encrypted fields (or just ``app_label.Model``), in a stable order."""
    if label:
        model = apps.get_model(label)
        fields = encrypted_fields(model)
        if not fields:
            raise ValueError(f"{label} has no encrypted fields.")
        return [(model, fields)]
    found = [(m, encrypted_fields(m)) for m in apps.get_models() if not m._meta.proxy]
    return sorted(((m, f) for m, f in found if f), key=lambda pair: pair[0]._meta.label)


def unscoped_manager(model):
    """Re-encryption walks every tenant's rows, so it must not be tenant-scoped."""
    return getattr(model, "unscoped_objects", model._base_manager)


class ReencryptBatch:
    """Re-encrypts one id-ordered batch of rows; rotates each scope once per run, on first sight."""

    def __init__(self, *, actor: Actor, rotate: bool, only_scope: KeyScope | None = None):
        self.actor = actor
        self.rotate = rotate
        self.only_scope = only_scope
        self.rotated: set[KeyScope] = set()
        self.values = 0
        self.skipped: list[str] = []

    def rotate_scope(self, scope: KeyScope) -> None:
        if self.rotate and scope not in self.rotated:
            data_key_rotate(scope=scope, actor=self.actor)
            self.rotated.add(scope)

    def run(self, model, fields, rows) -> int:
        # Every organisation's rows, in one transaction as the system role (row-level security binds
        # the application role; docs/decisions/025-rls-without-a-bypass.md).
        with unscoped_no_tenant():
            return self._run(unscoped_manager(model), fields, rows)

    def _run(self, manager, fields, rows) -> int:
        model = manager.model
        changed_rows = 0
        for row in rows:
            updates: dict[str, Ciphertext] = {}
            for field in fields:
                stored = row.__dict__.get(field.raw_attname)
                if stored is None:
                    continue
                try:
                    scope = field.scope_for(row)
                except ValueError as exc:
                    self.skipped.append(f"{model._meta.label} {row.pk}.{field.name}: {exc}")
                    continue
                if self.only_scope is not None and scope != self.only_scope:
                    continue
                self.rotate_scope(scope)
                if ciphertext_key_id(stored) == keyring.active_key_id(scope):
                    continue  # already under the scope's current key: resumable, idempotent
                updates[field.attname] = field.encrypt_for(row, getattr(row, field.attname))
            if updates:
                # .update(): no save() side effects, no updated_at change; the value is the same.
                manager.filter(pk=row.pk).update(**updates)
                changed_rows += 1
                self.values += len(updates)
        return changed_rows
