"""The ground floor's tables: base models, the key ring, the audit chain, the disclosure log,
field locks and stored idempotent responses. Their tables keep the names of the apps they
were first created in (``security_*``, ``privacy_*``, ``portal_*``), see docs/decisions/009."""

from .audit import AuditChainHead, AuditEvent
from .base import BaseModel, TenantModel
from .idempotency import IdempotencyRecord
from .keys import DataKey
from .privacy import Disclosure, FieldLock, FieldLockConflict

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "BaseModel",
    "DataKey",
    "Disclosure",
    "FieldLock",
    "FieldLockConflict",
    "IdempotencyRecord",
    "TenantModel",
]
