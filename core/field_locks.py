"""Field locks: a corrected value survives later syncs from outside sources.

A privacy correction (``privacy.services.corrections.correction_apply``) locks the fields it fixed.
Sync write paths (the directory sync's ``directory_user_upsert_from_graph``) ask ``locked_fields``
for the rows they are about to write, leave locked fields alone, and report a different incoming
value with ``conflict_record`` so staff see it instead of the sync writing it. Kernel module:
imports no app's services.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from .models import FieldLock, FieldLockConflict


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

    Writes no audit event itself: the caller records one (``privacy.services.corrections`` locks
    inside its own audited service).
    """
    lock, _ = FieldLock.objects.for_org(organization).get_or_create(
        organization=organization,
        model_label=_label(model),
        object_id=str(object_id),
        field_name=field_name,
        defaults={"locked_by": locked_by, "reason": reason},
    )
    return lock


def conflict_record(*, organization, model: type[models.Model] | str, object_id, field_names: Iterable[str],
                    source: str) -> None:
    """A sync was refused on locked fields of one row: open a conflict per field, or count another sighting."""
    now = timezone.now()
    for field_name in field_names:
        key = {"model_label": _label(model), "object_id": str(object_id), "field_name": field_name}
        open_rows = FieldLockConflict.objects.for_org(organization).filter(resolved_at__isnull=True, **key)
        if open_rows.update(occurrences=F("occurrences") + 1, last_seen_at=now, source=source):
            continue
        try:
            with transaction.atomic():
                FieldLockConflict.objects.create(organization=organization, source=source, **key)
        except IntegrityError:
            open_rows.update(occurrences=F("occurrences") + 1, last_seen_at=now)


# --- restriction of processing (GDPR Art. 18) ------------------------------------------------------------
#
# A row with a restricted field lock is a restricted subject: while the accuracy of their data is disputed
# it is stored, shown to the controller and to the subject, and otherwise left alone. Art. 18(2) allows
# further processing only with consent, for legal claims, to protect another person's rights or for an
# important public interest (``core.disclosures.RESTRICTION_EXEMPT_PURPOSES`` for disclosures). Stopping
# processing (unassigning a license, blocking sign-in, erasure) is always allowed.
# Every processing path asks here: the directory sync writes nothing to the row, services refuse to
# send the person's data to Microsoft (assign, reassign, password reset), queued Graph calls for them
# fail instead of running, non-essential reports and disclosures leave them out.

RESTRICTED_MESSAGE = (
    "Processing of this person's data is restricted while the accuracy of their data is disputed (GDPR Art. 18)."
)
RESTRICTED_FIX = "Ask your privacy officer to resolve the dispute and lift the restriction."


def restricted_object_ids(
    organization, model: type[models.Model] | str, object_ids: Iterable | None = None
) -> set[str]:
    """Ids (as ``str``) of ``model`` rows with at least one restricted field. One query.

    With ``object_ids`` only those are checked; without, every restricted row of the organisation.
    """
    rows = FieldLock.objects.for_org(organization).filter(model_label=_label(model), restricted_at__isnull=False)
    if object_ids is not None:
        ids = [str(i) for i in object_ids]
        if not ids:
            return set()
        rows = rows.filter(object_id__in=ids)
    return set(rows.values_list("object_id", flat=True))


# A lock on this pseudo-field covers the whole row: an erased directory user's tombstone, which syncs
# must neither refill nor report on (the person is still in the customer's directory).
ROW_LOCK = "*"


def suppressed_object_ids(organization, model: type[models.Model] | str, object_ids: Iterable) -> set[str]:
    """Ids (as ``str``) among ``object_ids`` whose whole row is locked (:data:`ROW_LOCK`). One query."""
    ids = [str(i) for i in object_ids]
    if not ids:
        return set()
    rows = FieldLock.objects.for_org(organization).filter(model_label=_label(model), field_name=ROW_LOCK,
                                                          object_id__in=ids)
    return set(rows.values_list("object_id", flat=True))


def is_restricted(organization, model: type[models.Model] | str, object_id) -> bool:
    return bool(restricted_object_ids(organization, model, [object_id]))
