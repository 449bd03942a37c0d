"""Erasure of a directory user: a person in a customer's Entra directory (``licensing.DirectoryUser``).

Called by :func:`privacy.services.erasure.erasure_perform` for an erasure that names directory users.
It takes two steps, because Microsoft answers through the outbox:

1. **Unassign.** Each person's row is locked whole and restricted (``core.field_locks.ROW_LOCK``):
   from now on the sync leaves it alone and nothing assigns them a license. Every license they hold
   is unassigned through the normal outbox path (``licensing.services.assignments.license_unassign``:
   the worker calls Graph, the seat is freed when Microsoft confirms). The erasure waits in
   ``unassigning``; each beat run checks again and re-queues a removal Microsoft refused.
2. **Erase.** Once no license is held or in flight: their assignment rows are deleted, bulk-job rows
   naming them lose the identifier and the link, and the directory row becomes a tombstone (every
   personal field emptied, removed, the Microsoft object id kept only so the next sync recognises the
   person and does not import them again).

Directory fields are encrypted under the organisation's key, not a per-person key, so this is
erasure, not crypto-shredding: copies in backups age out with the backups (decision 017), and are
shredded with the organisation's key when the organisation is erased. Kept, with the reason: audit
events about them (the tamper-evident chain), corrections of their data (the record of the request).
A legal hold on their organisation makes the erasure wait.
"""

from __future__ import annotations

from contextlib import suppress

from django.utils import timezone

from core.audit import Actor
from core.field_locks import ROW_LOCK, lock_field
from core.models import AuditEvent, FieldLock
from core.tenancy import tenant_context
from licensing.models import BulkJobRow, DirectoryUser, LicenseAssignment
from licensing.services.assignments import AssignmentRefused, license_unassign

ERASED_DOMAIN = "erased.invalid"
State = LicenseAssignment.State
IN_FLIGHT = (State.PENDING, State.REMOVING, State.HANDING_OVER)
KEPT_AUDIT = ("Kept: the activity log is a tamper-evident chain kept for security and legal obligations "
              "(GDPR Art. 17(3)(b)/(e)); entries name you only by an internal id")
KEPT_CORRECTIONS = "Kept as the record of your requests (CCPA §7101)"


def people_of(erasure) -> list[DirectoryUser]:
    people = []
    for entry in erasure.directory_users:
        with tenant_context(entry["org"]):
            person = (DirectoryUser.objects.for_org(entry["org"]).select_related("organization")
                      .filter(pk=entry["id"]).first())
        if person is not None:
            people.append(person)  # person.organization is loaded by the select_related above
    return people


def directory_plan(people) -> list[dict]:
    """What erasure does to each data set about these directory users, with counts only."""
    assignments = audit = corrections = 0
    for person in people:
        with tenant_context(person.organization_id):
            assignments += LicenseAssignment.objects.for_org(person.organization_id).filter(user=person).count()
            audit += AuditEvent.objects.for_org(person.organization_id).filter(target_id=str(person.pk)).count()
            corrections += FieldLock.objects.for_org(person.organization_id).filter(
                model_label="licensing.directoryuser", object_id=str(person.pk)).exclude(field_name=ROW_LOCK).count()
    plan = [{"data": "Your directory entry (name, sign-in name, mail, job title, department, country, "
                     "last sign-in)", "action": "erase", "rows": len(people),
             "how": "emptied; kept only as a marker so the next directory sync does not copy you in again"}]
    if assignments:
        plan.append({"data": "License assignments", "action": "erase", "rows": assignments,
                     "how": f"{assignments} unassigned in Microsoft 365, then deleted"})
    if audit:
        plan.append({"data": "Activity log entries about you", "action": "keep", "rows": audit, "why": KEPT_AUDIT,
                     "retention": "Legal period"})
    if corrections:
        plan.append({"data": "Corrections of your data", "action": "keep", "rows": corrections,
                     "why": KEPT_CORRECTIONS, "retention": "Privacy records"})
    return plan


def directory_unassign(people, *, reference: str, actor: Actor) -> bool:
    """Step 1, repeatable: freeze each row and queue removal of every license held. True when none is
    held or in flight any more (step 2 may run)."""
    settled = True
    for person in people:
        org = person.organization
        with tenant_context(org):
            lock = lock_field(organization=org, model=DirectoryUser, object_id=person.pk, field_name=ROW_LOCK,
                              reason=f"Erased at the person's request ({reference})")
            if lock.restricted_at is None:
                FieldLock.objects.for_org(org).filter(pk=lock.pk).update(restricted_at=timezone.now())
            held = LicenseAssignment.objects.for_org(org).filter(user=person).exclude(
                state__in=(State.REMOVED, State.FAILED)).select_related("sku")
            for assignment in held:
                settled = False
                if assignment.state == State.ASSIGNED:
                    with suppress(AssignmentRefused):  # moved or changing right now: the next run queues it
                        license_unassign(organization=org, assignment=assignment, actor=actor)
    return settled


def directory_erase(people, *, actor: Actor) -> None:
    """Step 2: delete and empty what the plan erases. Idempotent."""
    now = timezone.now()
    for person in people:
        org = person.organization_id
        with tenant_context(org):
            LicenseAssignment.objects.for_org(org).filter(user=person).delete()
            for row in BulkJobRow.objects.for_org(org).filter(user=person):
                row.identifier, row.user = "", None
                row.save(update_fields=["identifier", "user", "updated_at"])
            row = DirectoryUser.objects.for_org(org).select_for_update().get(pk=person.pk)
            row.display_name = "Erased user"
            row.user_principal_name = f"erased-{row.pk.hex[:12]}@{ERASED_DOMAIN}"
            row.mail = row.job_title = row.department = row.usage_location = None
            row.has_usage_location = False
            row.last_sign_in_at = None
            row.source_hash = ""
            row.removed_at = row.removed_at or now
            row.save()
