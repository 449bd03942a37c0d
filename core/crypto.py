"""AES-256-GCM envelope encryption.

A master key from the environment (or a KMS) wraps data keys. Data keys live in
``security.DataKey``, one active key per scope: an organisation for business data,
or a data subject where crypto-shredding is wanted. Ciphertext is
``v1:<data key id>:<base64(nonce || ciphertext || tag)>`` and its associated data
binds it to model, field, owner and row, so it cannot be moved elsewhere.
See docs/decisions/001-field-encryption.md.

This module knows no models: the encrypted fields import it, and models import the
fields. The rows behind the key ring come from a :class:`KeyStore`
(``core.keystore.DataKeyStore``), which ``SecurityConfig.ready()`` installs.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

CIPHERTEXT_VERSION = "v1"
NONCE_BYTES = 12
NONCE_BATCH = 256  # nonces drawn per os.urandom call by an encryptor()
KEY_CACHE_SECONDS = 300


class DecryptionError(Exception):
    """A value could not be decrypted: tampered, moved, or its key is gone. Never silent."""


class KeyConfigurationError(Exception):
    pass


@dataclass(frozen=True)
class KeyScope:
    kind: str  # "org", "subject" or "system"
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def parse_master_keys(raw: str) -> tuple[str, dict[str, bytes]]:
    """Parse ``kid:base64key,kid:base64key``; the first entry is the active key."""
    keys: dict[str, bytes] = {}
    active = None
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        kid, sep, material = entry.partition(":")
        if not sep or not kid:
            raise KeyConfigurationError("Master keys must look like 'kid:base64key'.")
        try:
            key = base64.b64decode(material, validate=True)
        except binascii.Error as exc:
            raise KeyConfigurationError(f"Master key {kid!r} is not valid base64.") from exc
        if len(key) != 32:
            raise KeyConfigurationError(f"Master key {kid!r} must be 32 bytes (AES-256), got {len(key)}.")
        keys[kid] = key
        active = active or kid
    if not active:
        raise KeyConfigurationError("FIELD_ENCRYPTION_MASTER_KEYS is empty.")
    return active, keys


def master_keys() -> tuple[str, dict[str, bytes]]:
    return parse_master_keys(settings.FIELD_ENCRYPTION_MASTER_KEYS)


def wrap_data_key(data_key: bytes, data_key_id: uuid.UUID) -> tuple[str, bytes]:
    kid, keys = master_keys()
    nonce = os.urandom(NONCE_BYTES)
    wrapped = nonce + AESGCM(keys[kid]).encrypt(nonce, data_key, f"dek:{data_key_id}".encode())
    return kid, wrapped


def unwrap_data_key(master_kid: str, wrapped: bytes, data_key_id: uuid.UUID) -> bytes:
    _, keys = master_keys()
    if master_kid not in keys:
        raise DecryptionError(f"Master key {master_kid!r} is not configured; cannot unwrap data key {data_key_id}.")
    wrapped = bytes(wrapped)
    try:
        return AESGCM(keys[master_kid]).decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], f"dek:{data_key_id}".encode()
        )
    except InvalidTag as exc:
        raise DecryptionError(f"Data key {data_key_id} failed to unwrap: wrong master key or tampered.") from exc


class KeyStore(Protocol):
    """Where wrapped data keys are kept; the key ring caches what it returns."""

    def data_key(self, key_id: uuid.UUID) -> bytes:
        """The unwrapped key, or DecryptionError when it does not exist or was destroyed."""

    def active_key_id(self, scope: KeyScope) -> uuid.UUID:
        """The scope's active key id, creating the key on first use."""

    def create_active(self, scope: KeyScope):
        """Create the scope's active key (or return the one a concurrent caller created); returns its row."""


class _CachedKey:
    """An unwrapped data key with its AESGCM object and ciphertext prefix, built once per key."""

    __slots__ = ("cipher", "expires", "material", "prefix")

    def __init__(self, key_id: uuid.UUID, material: bytes, expires: float):
        self.material = material
        self.cipher = AESGCM(material)
        self.prefix = f"{CIPHERTEXT_VERSION}:{key_id.hex}:"
        self.expires = expires


class KeyRing:
    """Process-local cache of unwrapped data keys, in front of security.DataKey."""

    def __init__(self, store: KeyStore | None = None):
        self._store = store
        self._by_id: dict[uuid.UUID, _CachedKey] = {}
        self._by_hex: dict[str, _CachedKey] = {}  # as written in ciphertexts: skips parsing the UUID
        self._active: dict[KeyScope, tuple[float, uuid.UUID]] = {}
        self._lock = threading.Lock()

    def use_store(self, store: KeyStore) -> None:
        self._store = store
        self.clear()

    @property
    def store(self) -> KeyStore:
        if self._store is None:
            raise KeyConfigurationError("The key ring has no key store yet: Django's apps are not ready.")
        return self._store

    def clear(self) -> None:
        with self._lock:
            self._by_id.clear()
            self._by_hex.clear()
            self._active.clear()

    def forget_scope(self, scope: KeyScope) -> None:
        with self._lock:
            self._active.pop(scope, None)

    def forget_key(self, key_id: uuid.UUID) -> None:
        with self._lock:
            self._by_id.pop(key_id, None)
            self._by_hex.pop(key_id.hex, None)

    def key(self, key_id: uuid.UUID) -> bytes:
        return self._entry(key_id).material

    def _entry(self, key_id: uuid.UUID) -> _CachedKey:
        now = time.monotonic()
        cached = self._by_id.get(key_id)
        if cached is not None and cached.expires > now:
            return cached
        entry = _CachedKey(key_id, self.store.data_key(key_id), now + KEY_CACHE_SECONDS)
        with self._lock:
            self._by_id[key_id] = entry
            self._by_hex[key_id.hex] = entry
        return entry

    def _entry_by_hex(self, key_hex: str) -> _CachedKey:
        cached = self._by_hex.get(key_hex)
        if cached is not None and cached.expires > time.monotonic():
            return cached
        try:
            key_id = uuid.UUID(hex=key_hex)
        except ValueError as exc:
            raise DecryptionError("Malformed ciphertext key id.") from exc
        return self._entry(key_id)

    def _active_entry(self, scope: KeyScope) -> tuple[uuid.UUID, _CachedKey]:
        now = time.monotonic()
        cached = self._active.get(scope)
        if cached and cached[0] > now:
            entry = self._by_id.get(cached[1])
            if entry is not None and entry.expires > now:
                return cached[1], entry
            return cached[1], self._entry(cached[1])
        key_id = self.store.active_key_id(scope)
        with self._lock:
            self._active[scope] = (now + KEY_CACHE_SECONDS, key_id)
        return key_id, self._entry(key_id)

    def active_key(self, scope: KeyScope) -> tuple[uuid.UUID, bytes]:
        key_id, entry = self._active_entry(scope)
        return key_id, entry.material

    def active_key_id(self, scope: KeyScope) -> uuid.UUID:
        return self._active_entry(scope)[0]

    def create_active(self, scope: KeyScope):
        """Create the scope's active data key (the caller has retired any previous one)."""
        return self.store.create_active(scope)


keyring = KeyRing()


def associated_data(label: str, field_name: str, scope: KeyScope, row_id) -> bytes:
    return f"{label}.{field_name}|{scope}|{row_id}".encode()


def encrypt_text(plaintext: str, *, scope: KeyScope, aad: bytes) -> str:
    _, entry = keyring._active_entry(scope)
    nonce = os.urandom(NONCE_BYTES)
    sealed = entry.cipher.encrypt(nonce, plaintext.encode("utf-8"), aad)
    return entry.prefix + binascii.b2a_base64(nonce + sealed, newline=False).decode("ascii")


def encryptor(scope: KeyScope):
    """``encrypt_text`` for many values of one key scope (one page of a bulk insert, say): the scope's
    active key and its cipher are looked up once, not per value. Hold it for one batch, not longer:
    a key retired meanwhile would go on being used until it is dropped."""
    _, entry = keyring._active_entry(scope)
    cipher, prefix = entry.cipher, entry.prefix
    # Nonces are cut from one os.urandom read per NONCE_BATCH values: the same random 96-bit nonces as
    # encrypt_text, without a system call per value (a first sync seals seven per user). Each is handed out
    # once by a list iterator's next(), which is atomic, so even a seal shared between threads cannot repeat one.
    nonces = iter(())

    def seal(plaintext: str, aad: bytes) -> str:
        nonlocal nonces
        nonce = next(nonces, None)
        while nonce is None:
            pool = os.urandom(NONCE_BYTES * NONCE_BATCH)
            nonces = iter([pool[start:start + NONCE_BYTES] for start in range(0, len(pool), NONCE_BYTES)])
            nonce = next(nonces, None)
        sealed = cipher.encrypt(nonce, plaintext.encode("utf-8"), aad)
        return prefix + binascii.b2a_base64(nonce + sealed, newline=False).decode("ascii")

    return seal


def random_uuids(count: int) -> list[uuid.UUID]:
    """``count`` version-4 UUIDs, as ``uuid.uuid4`` makes them, from one ``os.urandom`` read.

    ``uuid.uuid4`` reads the system's random source once per id. That system call cost about 9 µs on the virtual
    machine where a first directory sync was profiled (a sixteenth of its time per user) and 0.3 µs on another:
    what it saves depends on the host. The ids are the same: 122 random bits each, version and variant set by
    ``uuid.UUID``.
    """
    pool = os.urandom(16 * count)
    return [uuid.UUID(bytes=pool[start:start + 16], version=4) for start in range(0, 16 * count, 16)]


def _split(ciphertext: str) -> tuple[str, str]:
    version, sep, rest = ciphertext.partition(":")
    key_hex, sep2, payload = rest.partition(":")
    if not (sep and sep2):
        raise DecryptionError("Malformed ciphertext.")
    if version != CIPHERTEXT_VERSION:
        raise DecryptionError(f"Unknown ciphertext version {version!r}.")
    return key_hex, payload


def ciphertext_key_id(ciphertext: str) -> uuid.UUID:
    try:
        return uuid.UUID(hex=_split(ciphertext)[0])
    except ValueError as exc:
        raise DecryptionError("Malformed ciphertext key id.") from exc


def decrypt_text(ciphertext: str, *, aad: bytes) -> str:
    key_hex, payload = _split(ciphertext)
    try:
        # strict_mode rejects anything but canonical base64, like b64decode(validate=True), only faster.
        blob = binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptionError("Malformed ciphertext payload.") from exc
    cipher = keyring._entry_by_hex(key_hex).cipher
    try:
        return cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad).decode("utf-8")
    except InvalidTag as exc:
        raise DecryptionError(
            "Ciphertext failed authentication: it was altered or does not belong to this field and row."
        ) from exc


def _index_key(purpose: str) -> bytes:
    return _derived_index_key(settings.BLIND_INDEX_KEY, purpose)


@functools.lru_cache(maxsize=128)
def _derived_index_key(root_key: str, purpose: str) -> bytes:
    # Keyed by the root key itself, so a rotated or overridden BLIND_INDEX_KEY derives afresh; a sync
    # computes three indexes per user, and deriving each key anew was two HMACs and a base64 decode.
    root = base64.b64decode(root_key)
    return hmac.new(root, f"blind-index:{purpose}".encode(), hashlib.sha256).digest()


@functools.lru_cache(maxsize=128)
def _keyed_hmac(root_key: str, purpose: str):
    # The HMAC with its key pads already computed: copying it is cheaper than keying a new one (``hmac.digest``
    # keys afresh on every call: 3.4 against 2.1 µs here), and a sync computes four of these per user.
    # With OpenSSL behind it, ``hmac.HMAC`` wraps a C HMAC object (``_hmac``) whose copy, update and hexdigest
    # give the same digest as the wrapper's without its four Python-level calls per index (3.2 against 5.2 µs).
    keyed = hmac.new(_derived_index_key(root_key, purpose), digestmod=hashlib.sha256)
    return getattr(keyed, "_hmac", None) or keyed


def _hmac_index(keyed, value) -> str:
    mac = keyed.copy()
    mac.update(str(value).strip().casefold().encode("utf-8"))
    return mac.hexdigest()


def blind_index(purpose: str, value: str | None) -> str | None:
    """HMAC-SHA256 of the normalised value, for exact-match lookups of encrypted fields."""
    if value is None:
        return None
    return _hmac_index(_keyed_hmac(settings.BLIND_INDEX_KEY, purpose), value)


def blind_indexer(purpose: str):
    """``blind_index`` of one purpose for many values (a page of a sync, say), its key looked up once.
    Hold it for one batch, not longer: a changed ``BLIND_INDEX_KEY`` is read again by the next batch."""
    keyed = _keyed_hmac(settings.BLIND_INDEX_KEY, purpose)

    def index(value: str | None) -> str | None:
        return None if value is None else _hmac_index(keyed, value)

    return index
