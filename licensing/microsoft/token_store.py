"""Where the msal token cache lives between workers: Redis (Django's cache) or one database row.

Both stores seal the serialized cache with AES-256-GCM (system key scope) and write with
read-merge-write under a compare-and-swap (database) or a short lock (Redis), so two workers
that each fetched a token never lose one another's entries. Merging is a per-entry union: an
entry another worker deleted may come back, which msal tolerates (it ignores expired tokens).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from core.crypto import KeyScope, decrypt_text, encrypt_text
from licensing.models import MicrosoftTokenCache

KEY_SCOPE = KeyScope("system", "microsoft-token-cache")
CACHE_NAME = "default"


def _aad(name: str) -> bytes:
    return f"licensing.microsofttokencache.ciphertext|{name}".encode()


def merge_caches(stored: str, ours: str) -> str:
    """Union of two serialized msal caches, ours winning on the same key."""
    base = json.loads(stored) if stored else {}
    for section, entries in json.loads(ours or "{}").items():
        if isinstance(entries, dict):
            base.setdefault(section, {}).update(entries)
        else:
            base[section] = entries
    return json.dumps(base, sort_keys=True)


@dataclass
class Snapshot:
    version: int
    blob: str


class TokenStore(Protocol):
    def load(self) -> Snapshot: ...

    def merge_save(self, blob: str) -> Snapshot: ...


class MemoryTokenStore:
    """For tests and single-process tools."""

    def __init__(self):
        self.snapshot = Snapshot(0, "")

    def load(self) -> Snapshot:
        return self.snapshot

    def merge_save(self, blob: str) -> Snapshot:
        self.snapshot = Snapshot(self.snapshot.version + 1, merge_caches(self.snapshot.blob, blob))
        return self.snapshot


class DatabaseTokenStore:
    def __init__(self, name: str = CACHE_NAME, attempts: int = 5):
        self.name = name
        self.attempts = attempts

    def load(self) -> Snapshot:
        row = MicrosoftTokenCache.objects.filter(name=self.name).values("version", "ciphertext").first()
        if row is None or not row["ciphertext"]:
            return Snapshot(row["version"] if row else 0, "")
        return Snapshot(row["version"], decrypt_text(row["ciphertext"], aad=_aad(self.name)))

    def merge_save(self, blob: str) -> Snapshot:
        model = MicrosoftTokenCache
        for _ in range(self.attempts):
            current = self.load()
            merged = merge_caches(current.blob, blob)
            sealed = encrypt_text(merged, scope=KEY_SCOPE, aad=_aad(self.name))
            with transaction.atomic():
                if current.version == 0 and not model.objects.filter(name=self.name).exists():
                    _, created = model.objects.get_or_create(
                        name=self.name, defaults={"version": 1, "ciphertext": sealed}
                    )
                    if created:
                        return Snapshot(1, merged)
                    continue
                updated = model.objects.filter(name=self.name, version=current.version).update(
                    version=current.version + 1, ciphertext=sealed
                )
            if updated:
                return Snapshot(current.version + 1, merged)
        # Lost every race: the other writers' tokens are in the store; ours is still in memory.
        return self.load()


class DjangoCacheTokenStore:
    """Redis via Django's cache. ``cache.add`` is SET NX, which gives the short write lock."""

    def __init__(self, name: str = CACHE_NAME, lock_seconds: int = 5, clock=time.monotonic, sleep=time.sleep):
        self.key = f"licensing:msal-token-cache:{name}"
        self.name = name
        self.lock_seconds = lock_seconds
        self.clock = clock
        self.sleep = sleep

    def load(self) -> Snapshot:
        value = cache.get(self.key)
        if not value:
            return Snapshot(0, "")
        return Snapshot(value["version"], decrypt_text(value["ciphertext"], aad=_aad(self.name)))

    def merge_save(self, blob: str) -> Snapshot:
        lock_key, owner = f"{self.key}:lock", uuid.uuid4().hex
        deadline = self.clock() + self.lock_seconds
        while not cache.add(lock_key, owner, timeout=self.lock_seconds):
            if self.clock() > deadline:
                return self.load()
            self.sleep(0.02)
        try:
            current = self.load()
            merged = merge_caches(current.blob, blob)
            snapshot = Snapshot(current.version + 1, merged)
            sealed = encrypt_text(merged, scope=KEY_SCOPE, aad=_aad(self.name))
            cache.set(self.key, {"version": snapshot.version, "ciphertext": sealed}, timeout=None)
            return snapshot
        finally:
            if cache.get(lock_key) == owner:
                cache.delete(lock_key)


def default_store() -> TokenStore:
    return DjangoCacheTokenStore() if settings.REDIS_URL else DatabaseTokenStore()
