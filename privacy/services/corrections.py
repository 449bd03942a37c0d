"""Corrections that survive syncs, disputed-field restriction, and the conflicts syncs report.

:func:`correction_apply` writes the corrected value, records the old and new values (encrypted),
who and why, and locks the field (``core.field_locks``), in one transaction with an audit event.
The directory sync then leaves the field alone and reports a different incoming value as a
:class:`~core.models.FieldLockConflict` for staff (:func:`conflict_resolve`). A disputed field can
be marked restricted (GDPR Art. 18(1)(a)) until resolved (:func:`restriction_set`); the flag is
recorded on the lock, and every processing path honours it through ``core.field_locks.restricted_object_ids``
(the sync, assignments, password resets, the disclosure choke point, the inactive-users report).
"""

from __future__ import annotations

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core.audit import Actor, audit_record
from core.field_locks import lock_field
from core.fields import BlindIndexField
from core.models import FieldLock, FieldLockConflict, TenantModel
from core.registry import declaration_for
from core.tenancy import tenant_context
from privacy.models import Correction, PrivacyRequest
from privacy.services.history import history_add
from privacy.services.recipient_notices import recipient_notices_open
from privacy.services.requests import Action


def _correctable(model_label: str, field_name: str):
    try:
        model = apps.get_model(model_label)
    except (LookupError, ValueError) as exc:
        raise ValidationError({"model": "Unknown kind of record."}) from exc
    declaration = declaration_for(model)
    if (
        not issubclass(model, TenantModel)
        or declaration is None
        or field_name not in declaration.personal
        or isinstance(model._meta.get_field(field_name), BlindIndexField)  # derived: follows its source
    ):
        raise ValidationError({"field": "Only personal fields of an organisation's records can be corrected here."})
    return model


def correction_apply(
    *,
    organization,
    model_label: str,
    object_id,
    field_name: str,
    new_value: str,
    reason: str,
    actor: User,
    request: PrivacyRequest | None = None,
    restrict: bool = False,
) -> Correction:
    """Correct one field of one of ``organization``'s rows and lock it against later syncs."""
    model = _correctable(model_label, field_name)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the value is corrected."})
    with tenant_context(organization), transaction.atomic():
        row = model.objects.for_org(organization).select_for_update().filter(pk=object_id).first()
        if row is None:
            raise ValidationError({"object": "No such record in this organisation."})
        old = getattr(row, field_name)
        setattr(row, field_name, new_value)
        others = [f.name for f in model._meta.concrete_fields if f.name != field_name]
        row.clean_fields(exclude=others)
        indexes = [
            f.name for f in model._meta.concrete_fields if isinstance(f, BlindIndexField) and f.source == field_name
        ]
        stamps = [f.name for f in model._meta.concrete_fields if f.name == "updated_at"]
        row.save(update_fields=[field_name, *indexes, *stamps])
        correction = Correction(
            organization=organization,
            request=request,
            model_label=model._meta.label_lower,
            object_id=str(row.pk),
            field_name=field_name,
            old_value="" if old is None else str(old),
            new_value=str(new_value),
            reason=reason,
            corrected_by=actor,
        )
        # The person is an instance in hand, whose row row-level security may not show here (decision 043).
        correction.full_clean(exclude=["corrected_by"])
        correction.save()
        lock = lock_field(
            organization=organization,
            model=model,
            object_id=row.pk,
            field_name=field_name,
            locked_by=actor,
            reason=reason[:300],
        )
        if restrict and lock.restricted_at is None:
            FieldLock.objects.for_org(organization).filter(pk=lock.pk).update(restricted_at=timezone.now())
        audit_record(
            actor=Actor.staff(actor),
            action="privacy.correction_applied",
            organization=organization,
            target=correction,
            metadata={"model": correction.model_label, "field": field_name, "restricted": restrict},
        )
        if request is not None:
            history_add(
                request,
                Action.NOTE,
                actor=actor,
                note=f"Corrected {model._meta.verbose_name} {field_name}; locked against syncs",
            )
            recipient_notices_open(request, [organization.pk], "correction")
            if restrict:
                recipient_notices_open(request, [organization.pk], "restriction")
    return correction


@transaction.atomic
def restriction_set(*, organization, lock_id, restricted: bool, actor: User,
                    request: PrivacyRequest | None = None) -> FieldLock:
    """Restrict a disputed field (or lift it). With the request it answers, recipients are told (Art. 19)."""
    with tenant_context(organization):
        lock = FieldLock.objects.for_org(organization).select_for_update().get(pk=lock_id)
        lock.restricted_at = timezone.now() if restricted else None
        lock.save(update_fields=["restricted_at", "updated_at"])
        audit_record(
            actor=Actor.staff(actor),
            action="privacy.restriction_set",
            organization=organization,
            target=lock,
            metadata={"restricted": restricted, "field": lock.field_name},
        )
        if request is not None and restricted:
            recipient_notices_open(request, [organization.pk], "restriction")
    return lock


@transaction.atomic
def conflict_resolve(*, organization, conflict_id, actor: User) -> FieldLockConflict:
    """Staff reviewed a refused sync value: the corrected value stands and the conflict closes."""
    with tenant_context(organization):
        conflict = FieldLockConflict.objects.for_org(organization).select_for_update().get(pk=conflict_id)
        if conflict.resolved_at is None:
            conflict.resolved_at, conflict.resolved_by = timezone.now(), actor
            conflict.save(update_fields=["resolved_at", "resolved_by", "updated_at"])
            audit_record(
                actor=Actor.staff(actor),
                action="privacy.sync_conflict_resolved",
                organization=organization,
                target=conflict,
            )
    return conflict
