"""The key ring gets its rows through the key store installed at app ready; crypto.py imports no models."""

import ast
import uuid
from pathlib import Path

import pytest

import core.crypto
from core.crypto import DecryptionError, KeyConfigurationError, KeyRing, KeyScope, keyring
from core.keystore import DataKeyStore
from core.models import DataKey


def test_crypto_module_imports_no_models_anywhere():
    tree = ast.parse(Path(core.crypto.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name and "models" in name}


def test_the_shared_key_ring_uses_the_database_store():
    assert isinstance(keyring.store, DataKeyStore)


def test_a_key_ring_without_a_store_says_so():
    with pytest.raises(KeyConfigurationError):
        KeyRing().active_key(KeyScope("org", str(uuid.uuid4())))


@pytest.mark.django_db
def test_store_creates_one_active_key_per_scope_and_refuses_missing_or_destroyed_keys():
    store = DataKeyStore()
    scope = KeyScope("org", str(uuid.uuid4()))
    first = store.active_key_id(scope)
    assert store.active_key_id(scope) == first
    assert store.create_active(scope).pk == first  # a concurrent creator gets the existing key
    assert len(store.data_key(first)) == 32
    with pytest.raises(DecryptionError, match="does not exist"):
        store.data_key(uuid.uuid4())
    DataKey.objects.filter(pk=first).update(status=DataKey.Status.DESTROYED, wrapped_key=None)
    with pytest.raises(DecryptionError, match="destroyed"):
        store.data_key(first)
