"""The temporary password of a user creation or password reset: shown once, then erased.

The handlers in ``users.py`` put a password Graph accepted into the operation's encrypted result and
mark the operation ``checkpoint["password_waiting"]``. :func:`temporary_password_reveal` hands it to
whoever asked for it, once, and erases it; :func:`temporary_passwords_expire` erases any nobody
revealed within :data:`~licensing.services.directory.users.PASSWORD_TTL`.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.audit import Actor, audit_record
from licensing.models import ProvisioningOperation

from .users import PASSWORD_KINDS, PASSWORD_TTL, DirectoryActionRefused, erase_password


def password_waiting(operation: ProvisioningOperation) -> bool:
    return bool((operation.checkpoint or {}).get("password_waiting"))


def may_reveal(operation: ProvisioningOperation, actor: Actor) -> bool:
    """Only whoever asked for the password sees it (the same user, or the same API key)."""
    return operation.actor_label == f"{actor.type}:{actor.id}"[:100]


@transaction.atomic
def temporary_password_reveal(*, organization, operation: ProvisioningOperation, actor: Actor) -> str | None:
    """Hand out the temporary password once and erase it. ``None`` when it has expired (erased now)."""
    operation = ProvisioningOperation.objects.for_org(organization).select_for_update().get(pk=operation.pk)
    if operation.kind not in PASSWORD_KINDS or operation.status != ProvisioningOperation.Status.SUCCEEDED:
        raise DirectoryActionRefused("not_available", "This operation has no temporary password to show.")
    if not may_reveal(operation, actor):
        raise DirectoryActionRefused("not_requester", "Only the admin who asked for this password can see it. "
                                                      "Reset the password again to get a new one.")
    result = dict(operation.result or {})
    password = result.pop("temporary_password", None)
    if not password:
        raise DirectoryActionRefused("already_shown", "This temporary password was already shown, replaced by a "
                                                      "newer one, or expired. Reset the password to get a new one.")
    now = timezone.now()
    expires = _parse(result.get("password_expires_at"))
    expired = expires is not None and expires <= now
    result["password_expired_at" if expired else "password_revealed_at"] = now.isoformat()
    operation.result = result
    operation.checkpoint = {k: v for k, v in (operation.checkpoint or {}).items() if k != "password_waiting"}
    operation.save(update_fields=["result", "checkpoint", "updated_at"])
    audit_record(actor=actor, action="directory.temporary_password_expired" if expired
                 else "directory.temporary_password_revealed", organization=organization, target=operation)
    return None if expired else password


@transaction.atomic
def temporary_passwords_expire(*, organization, now: datetime | None = None) -> int:
    """Erase the temporary passwords nobody revealed within :data:`PASSWORD_TTL`."""
    now = now or timezone.now()
    rows = ProvisioningOperation.objects.for_org(organization).select_for_update().filter(
        kind__in=PASSWORD_KINDS, checkpoint__password_waiting=True, finished_at__lte=now - PASSWORD_TTL,
    )
    count = 0
    for operation in rows:
        erase_password(operation)
        operation.result = {**(operation.result or {}), "password_expired_at": now.isoformat()}
        operation.save(update_fields=["payload", "result", "checkpoint", "updated_at"])
        audit_record(actor=Actor.system("directory"), action="directory.temporary_password_expired",
                     organization=organization, target=operation)
        count += 1
    return count


def _parse(value) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) and value else None
