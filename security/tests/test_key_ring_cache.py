"""The key ring's cache in front of the key store: what it asks the store for, and when it forgets."""

import os
import uuid

import pytest

from core.crypto import (
    DecryptionError,
    KeyConfigurationError,
    KeyRing,
    KeyScope,
    associated_data,
    ciphertext_key_id,
)


class CountingStore:
    def __init__(self):
        self.keys: dict[uuid.UUID, bytes] = {}
        self.active: dict[KeyScope, uuid.UUID] = {}
        self.data_key_calls = 0
        self.active_calls = 0

    def data_key(self, key_id):
        self.data_key_calls += 1
        if key_id not in self.keys:
            raise DecryptionError(f"no key {key_id}")
        return self.keys[key_id]

    def active_key_id(self, scope):
        self.active_calls += 1
        if scope not in self.active:
            key_id = uuid.uuid4()
            self.keys[key_id] = os.urandom(32)
            self.active[scope] = key_id
        return self.active[scope]

    def create_active(self, scope):
        self.active.pop(scope, None)
        return self.active_key_id(scope)


SCOPE = KeyScope("org", "00000000-0000-0000-0000-000000000001")


def test_without_a_store_the_ring_says_django_is_not_ready():
    with pytest.raises(KeyConfigurationError, match="no key store yet"):
        KeyRing().key(uuid.uuid4())


def test_keys_are_fetched_once_and_refetched_after_forget_key():
    store = CountingStore()
    ring = KeyRing(store)
    key_id, material = ring.active_key(SCOPE)
    assert store.keys[key_id] == material and len(material) == 32
    assert ring.key(key_id) == material and ring.active_key(SCOPE) == (key_id, material)
    assert ring.active_key_id(SCOPE) == key_id
    assert (store.data_key_calls, store.active_calls) == (1, 1)
    ring.forget_key(key_id)
    assert ring.key(key_id) == material
    assert store.data_key_calls == 2
    assert ring._entry_by_hex(key_id.hex).material == material
    assert store.data_key_calls == 2


def test_a_destroyed_key_stays_destroyed_once_forgotten():
    store = CountingStore()
    ring = KeyRing(store)
    key_id, _ = ring.active_key(SCOPE)
    del store.keys[key_id]
    ring.forget_key(key_id)
    with pytest.raises(DecryptionError):
        ring.key(key_id)
    with pytest.raises(DecryptionError):
        ring._entry_by_hex(key_id.hex)


def test_use_store_and_forget_scope_drop_what_was_cached():
    first, second = CountingStore(), CountingStore()
    ring = KeyRing(first)
    key_id, _ = ring.active_key(SCOPE)
    ring.use_store(second)
    other_id, _ = ring.active_key(SCOPE)
    assert other_id != key_id and second.active_calls == 1
    assert ring.store is second
    second.create_active(SCOPE)
    assert ring.active_key_id(SCOPE) == other_id  # cached until forgotten
    ring.forget_scope(SCOPE)
    assert ring.active_key_id(SCOPE) != other_id


def test_malformed_key_ids_are_decryption_errors():
    with pytest.raises(DecryptionError, match=r"^Malformed ciphertext key id\.$"):
        ciphertext_key_id("v1:not-hex:payload")
    with pytest.raises(DecryptionError, match=r"^Malformed ciphertext\.$"):
        ciphertext_key_id("v1-no-separators")
    key_id = uuid.uuid4()
    assert ciphertext_key_id(f"v1:{key_id.hex}:payload") == key_id
    with pytest.raises(DecryptionError, match=r"^Malformed ciphertext key id\.$"):
        KeyRing(CountingStore())._entry_by_hex("zz")
    assert associated_data("accounts.user", "email", SCOPE, 7) == f"accounts.user.email|{SCOPE}|7".encode()
