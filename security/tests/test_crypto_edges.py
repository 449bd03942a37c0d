"""The envelope encryption's refusals, word for word, and the key ring when what it cached is gone.

Each refusal names what is wrong (an operator reads it in a failed deploy or a support ticket), a
ciphertext that is not exactly what was written never decrypts, and the blind index of one purpose
never matches another's.
"""

import base64
import hashlib
import os
import uuid
from types import SimpleNamespace

import pytest

from core import crypto
from core.crypto import DecryptionError, KeyConfigurationError, KeyRing, KeyScope, parse_master_keys

from .test_key_ring_cache import SCOPE, CountingStore

# Fixed, not random: they appear in parametrized test ids, which every xdist worker must collect alike.
KEY_A, KEY_B = hashlib.sha256(b"test key A").digest(), hashlib.sha256(b"test key B").digest()
B64_A, B64_B = base64.b64encode(KEY_A).decode(), base64.b64encode(KEY_B).decode()


# -- master keys from the environment --------------------------------------------------------------------
def test_master_keys_read_every_entry_and_the_first_is_active():
    assert parse_master_keys(f"2026:{B64_A},2025:{B64_B}") == ("2026", {"2026": KEY_A, "2025": KEY_B})
    assert parse_master_keys(f" , 2026:{B64_A}, ,2025:{B64_B} ,") == ("2026", {"2026": KEY_A, "2025": KEY_B})


@pytest.mark.parametrize(("raw", "message"), [
    (B64_A, "Master keys must look like 'kid:base64key'."),
    (f":{B64_A}", "Master keys must look like 'kid:base64key'."),
    (f"2026:{B64_A[:10]}*{B64_A[10:]}", "Master key '2026' is not valid base64."),
    (f"team:2026:{B64_A}", "Master key 'team' is not valid base64."),
    (f"2026:{base64.b64encode(KEY_A[:16]).decode()}", "Master key '2026' must be 32 bytes (AES-256), got 16."),
    ("", "FIELD_ENCRYPTION_MASTER_KEYS is empty."),
    (" , ", "FIELD_ENCRYPTION_MASTER_KEYS is empty."),
])
def test_a_master_key_setting_that_cannot_be_used_says_why(raw, message):
    with pytest.raises(KeyConfigurationError) as refused:
        parse_master_keys(raw)
    assert str(refused.value) == message


def test_a_data_key_needs_its_own_master_key_and_its_own_id(settings):
    settings.FIELD_ENCRYPTION_MASTER_KEYS = f"2026:{B64_A},2025:{B64_B}"
    data_key, key_id = os.urandom(32), uuid.uuid4()
    kid, wrapped = crypto.wrap_data_key(data_key, key_id)
    assert kid == "2026" and crypto.unwrap_data_key(kid, wrapped, key_id) == data_key
    with pytest.raises(DecryptionError) as moved:
        crypto.unwrap_data_key(kid, wrapped, uuid.UUID(int=1))
    assert str(moved.value) == (
        f"Data key {uuid.UUID(int=1)} failed to unwrap: wrong master key or tampered.")
    settings.FIELD_ENCRYPTION_MASTER_KEYS = f"2025:{B64_B}"
    with pytest.raises(DecryptionError) as retired:
        crypto.unwrap_data_key(kid, wrapped, key_id)
    assert str(retired.value) == f"Master key '2026' is not configured; cannot unwrap data key {key_id}."


# -- the key ring when what it cached is gone ---------------------------------------------------------
def test_forgetting_what_was_never_cached_is_harmless():
    ring = KeyRing(CountingStore())
    ring.forget_scope(KeyScope("subject", "never-used"))
    ring.forget_key(uuid.uuid4())


def test_an_active_key_forgotten_by_id_is_fetched_again_for_its_scope():
    store = CountingStore()
    ring = KeyRing(store)
    key_id, material = ring.active_key(SCOPE)
    ring.forget_key(key_id)
    assert ring.active_key(SCOPE) == (key_id, material)
    assert (store.active_calls, store.data_key_calls) == (1, 2)


def test_an_active_key_destroyed_and_forgotten_does_not_come_back():
    store = CountingStore()
    ring = KeyRing(store)
    key_id, _ = ring.active_key(SCOPE)
    del store.keys[key_id]
    ring.forget_key(key_id)
    with pytest.raises(DecryptionError):
        ring.active_key(SCOPE)


def test_cached_keys_expire_after_the_cache_period(monkeypatch):
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(crypto, "time", SimpleNamespace(monotonic=lambda: clock.now))
    store = CountingStore()
    ring = KeyRing(store)
    key_id, _ = ring.active_key(SCOPE)
    clock.now += crypto.KEY_CACHE_SECONDS - 1
    ring.active_key(SCOPE)
    ring._entry_by_hex(key_id.hex)
    assert (store.active_calls, store.data_key_calls) == (1, 1)
    clock.now += 2
    ring.active_key(SCOPE)
    assert (store.active_calls, store.data_key_calls) == (2, 2)
    clock.now += crypto.KEY_CACHE_SECONDS + 1
    ring._entry_by_hex(key_id.hex)
    assert store.data_key_calls == 3


def test_create_active_asks_the_store_for_a_new_key():
    store = CountingStore()
    ring = KeyRing(store)
    old_id = ring.active_key_id(SCOPE)
    new_id = ring.create_active(SCOPE)
    assert new_id != old_id and store.active[SCOPE] == new_id


# -- ciphertexts that are not exactly what was written ------------------------------------------------
@pytest.fixture
def ring(monkeypatch):
    ring = KeyRing(CountingStore())
    monkeypatch.setattr(crypto, "keyring", ring)
    return ring


AAD = b"accounts.user.email|org:1|7"


def test_a_round_trip_and_its_ciphertext_format(ring):
    sealed = crypto.encrypt_text("zoë@example.com", scope=SCOPE, aad=AAD)
    version, key_hex, payload = sealed.split(":")
    assert version == "v1" and key_hex == ring.active_key_id(SCOPE).hex
    assert len(base64.b64decode(payload, validate=True)) == crypto.NONCE_BYTES + len("zoë@example.com".encode()) + 16
    assert crypto.decrypt_text(sealed, aad=AAD) == "zoë@example.com"


def test_an_encryptor_never_repeats_a_nonce_across_its_batches_of_random_bytes(ring):
    """Nonces come from one os.urandom read per batch; past several batches each is still used once and
    every value decrypts under its own associated data, as from encrypt_text."""
    seal = crypto.encryptor(SCOPE)
    count = 3 * crypto.NONCE_BATCH + 5
    sealed = [seal(f"user{i}@example.com", AAD + str(i).encode()) for i in range(count)]
    nonces = {base64.b64decode(value.split(":")[2])[:crypto.NONCE_BYTES] for value in sealed}
    assert len(nonces) == count
    assert [crypto.decrypt_text(value, aad=AAD + str(i).encode()) for i, value in enumerate(sealed)] == [
        f"user{i}@example.com" for i in range(count)]


def test_a_blind_indexer_gives_the_blind_index_of_each_value():
    index_of = crypto.blind_indexer("upn")
    for value in ("Zoë@Example.com ", "zoë@example.com", "42", None):
        assert index_of(value) == crypto.blind_index("upn", value)
    assert index_of("a@example.com") != crypto.blind_indexer("mail")("a@example.com")


def test_a_blind_index_is_the_hmac_sha256_of_the_normalised_value_under_the_purposes_key(settings):
    # Stored indexes must stay valid whichever HMAC object computes them (the C one behind hmac.HMAC, or it).
    import base64
    import hashlib
    import hmac

    root = base64.b64decode(settings.BLIND_INDEX_KEY)
    key = hmac.new(root, b"blind-index:upn", hashlib.sha256).digest()
    expected = hmac.new(key, "zoë@example.com".encode(), hashlib.sha256).hexdigest()
    assert crypto.blind_index("upn", " Zoë@Example.COM ") == crypto.blind_indexer("upn")("ZOË@example.com") == expected
    crypto._keyed_hmac.cache_clear()
    assert crypto.blind_index("upn", "zoë@example.com") == expected  # the keyed HMAC is copied, never changed


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda s: s[:-8] + "!" + s[-8:], "Malformed ciphertext payload."),
    (lambda s: s[:-8] + " " + s[-8:], "Malformed ciphertext payload."),
    (lambda s: s + ":AAAA", "Malformed ciphertext payload."),
    (lambda s: s.split(":", 2)[0] + ":" + s.split(":", 2)[1], "Malformed ciphertext."),
    (lambda s: "v2" + s[2:], "Unknown ciphertext version 'v2'."),
    (lambda s: s[:-4] + ("AAAA" if s[-4:] != "AAAA" else "BBBB"),
     "Ciphertext failed authentication: it was altered or does not belong to this field and row."),
])
def test_a_ciphertext_that_is_not_exactly_what_was_written_never_decrypts(ring, mangle, message):
    sealed = crypto.encrypt_text("a secret", scope=SCOPE, aad=AAD)
    with pytest.raises(DecryptionError) as refused:
        crypto.decrypt_text(mangle(sealed), aad=AAD)
    assert str(refused.value) == message


def test_blind_indexes_of_different_purposes_never_match():
    assert crypto.blind_index("email", " Zoë@Example.com ") == crypto.blind_index("email", "zoë@example.com")
    assert crypto.blind_index("email", "zoë@example.com") != crypto.blind_index("phone", "zoë@example.com")
    assert crypto.blind_index("email", None) is None


def test_a_cached_key_is_used_for_the_cache_period_and_not_a_moment_longer(monkeypatch):
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(crypto, "time", SimpleNamespace(monotonic=lambda: clock.now))
    store = CountingStore()
    key_id = store.active_key_id(SCOPE)
    ring = KeyRing(store)
    ring.key(key_id)  # cached until 1300
    clock.now = 1100.0
    ring.active_key(SCOPE)  # the scope's active id cached until 1400, its key still cached
    assert store.data_key_calls == 1
    clock.now = 1000.0 + crypto.KEY_CACHE_SECONDS
    ring.active_key(SCOPE)
    assert store.data_key_calls == 2

    for read in (lambda ring: ring.key(key_id), lambda ring: ring._entry_by_hex(key_id.hex),
                 lambda ring: ring.active_key(SCOPE)):
        store = CountingStore()
        key_id = store.active_key_id(SCOPE)
        ring = KeyRing(store)
        clock.now = 1000.0
        ring.active_key(SCOPE)
        clock.now = 1000.0 + crypto.KEY_CACHE_SECONDS
        read(ring)
        assert store.data_key_calls == 2
    assert store.active_calls == 3  # after the last read (the scope's): asked again once its id expired too


def test_random_uuids_are_version_4_ids_read_from_the_random_source_once(monkeypatch):
    reads = []
    urandom = os.urandom
    monkeypatch.setattr(crypto.os, "urandom", lambda n: reads.append(n) or urandom(n))
    ids = crypto.random_uuids(1000)
    assert reads == [16 * 1000]
    assert len(set(ids)) == 1000
    assert {(u.version, u.variant) for u in ids} == {(4, uuid.RFC_4122)}
    assert crypto.random_uuids(0) == []
