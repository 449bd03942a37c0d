"""Field locks: a corrected value survives later syncs from outside sources.

A privacy correction will lock the fields it fixed (the correction workflow is not yet
built; today only tests call ``lock_field``). Sync write paths (the directory
sync's ``directory_user_upsert_from_graph``) ask ``locked_fields`` for the rows they are
about to write and leave locked fields alone. Kernel module: imports no app's services.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models

from .models import FieldLock


def _label(model: type[models.Model] | str) -> str:
    return model if isinstance(model, str) else model._meta.label_lower


def locked_fields(organization, model: type[models.Model] | str, object_ids: Iterable) -> dict[str, set[str]]:
    """Locked field names per object id (as ``str``) among ``object_ids``. One query, however many ids."""
    ids = [str(i) for i in object_ids]
    if not ids:
        return {}
    found: dict[str, set[str]] = {}
    rows = FieldLock.objects.for_org(organization).filter(model_label=_label(model), object_id__in=ids)
    for object_id, field_name in rows.values_list("object_id", "field_name"):
        found.setdefault(object_id, set()).add(field_name)
    return found


def lock_field(*, organization, model: type[models.Model] | str, object_id, field_name: str, locked_by=None,
               reason: str = "") -> FieldLock:
    """Lock one field of one row. Idempotent.

    Writes no audit event itself: a caller must record one. The correction workflow that should call
    this inside its own audited service is not yet built.
    """
    lock, _ = FieldLock.objects.for_org(organization).get_or_create(
        organization=organization,
        model_label=_label(model),
        object_id=str(object_id),
        field_name=field_name,
        defaults={"locked_by": locked_by, "reason": reason},
    )
    return lock
