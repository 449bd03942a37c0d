"""The key ring's database side: security.DataKey rows, read and created.

Installed into ``core.crypto.keyring`` by ``SecurityConfig.ready()``, so that crypto.py,
which the encrypted fields (and so the models) import, never imports a model itself.
"""

from __future__ import annotations

import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import IntegrityError, transaction

from .crypto import DecryptionError, KeyScope, unwrap_data_key, wrap_data_key
from .models import DataKey


class DataKeyStore:
    """Wrapped data keys in the database, unwrapped with the master keys from settings."""

    def data_key(self, key_id: uuid.UUID) -> bytes:
        row = DataKey.objects.filter(pk=key_id).first()
        if row is None:
            raise DecryptionError(f"Data key {key_id} does not exist.")
        if row.status == DataKey.Status.DESTROYED or row.wrapped_key is None:
            raise DecryptionError(f"Data key {key_id} was destroyed (crypto-shredded); the value is unrecoverable.")
        return unwrap_data_key(row.master_kid, row.wrapped_key, row.pk)

    def active_key_id(self, scope: KeyScope) -> uuid.UUID:
        active = DataKey.objects.filter(scope_kind=scope.kind, scope_id=scope.id, status=DataKey.Status.ACTIVE)
        key_id = active.values_list("pk", flat=True).first()
        return key_id if key_id is not None else self.create_active(scope).pk

    def create_active(self, scope: KeyScope) -> DataKey:
        key_id = uuid.uuid4()
        master_kid, wrapped = wrap_data_key(AESGCM.generate_key(bit_length=256), key_id)
        try:
            with transaction.atomic():
                return DataKey.objects.create(
                    id=key_id, scope_kind=scope.kind, scope_id=scope.id, master_kid=master_kid, wrapped_key=wrapped
                )
        except IntegrityError:
            # Another process created the scope's key first; use theirs.
            return DataKey.objects.get(scope_kind=scope.kind, scope_id=scope.id, status=DataKey.Status.ACTIVE)
