"""Offboarding a leaver, as the Microsoft 365 admin center does it short of deleting the account: block
sign-in, sign the user out of every session, remove licenses through the normal assignment path
(``license_unassign``: the seat is freed once Microsoft confirms), with an explicit choice for the mailbox.

What each mailbox choice does, and what Graph can do about it:

- ``delete`` (leave it for deletion): every license is removed. Exchange Online keeps a mailbox for
  30 days after its last license goes, then deletes it; giving a license back within those days
  restores it.
- ``keep``: the licenses that carry an Exchange Online mailbox plan (and do not disable it) stay
  assigned; the others are removed. The mailbox stays exactly as it is.
- ``shared`` (convert to a shared mailbox): not yet done by the portal. Graph has no API that changes a
  mailbox's type; Exchange Online PowerShell (``Set-Mailbox -Type Shared``) or the Exchange admin
  center does. The portal records the choice, keeps the mailbox license(s) so nothing is lost before
  the conversion, and shows the admin the step left to do; remove the license after converting.

The account itself is not deleted (Microsoft keeps a deleted user for 30 days too); not yet: forwarding
mail, handing OneDrive to a manager, removing group memberships.
"""

from __future__ import annotations

from django.db import models, transaction

from accounts.models import User
from core.audit import Actor, audit_record
from licensing.models import DirectoryUser, LicenseAssignment, ProvisioningOperation
from licensing.provisioning import OperationInProgress, operation_milestone, register_operation
from licensing.services.assignments import AssignmentRefused, license_unassign

from .users import (
    BLOCK,
    OFFBOARD,
    PASSWORD_RESET,
    UNBLOCK,
    DirectoryActionRefused,
    active_operation,
    actor_of_operation,
    block_sign_in,
    enqueue_for_user,
    lock_user,
    target_user,
)

State = LicenseAssignment.State

# Service plans that give a user an Exchange Online mailbox. EXCHANGE_S_FOUNDATION (in many SKUs) and the
# archive add-on do not: a license carrying only those is not a mailbox license.
MAILBOX_PLANS = frozenset({"EXCHANGE_S_STANDARD", "EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_DESKLESS",
                           "EXCHANGE_S_ESSENTIALS"})


class Mailbox(models.TextChoices):
    KEEP = "keep", "Keep the mailbox (its license stays assigned)"
    SHARED = "shared", "Convert to a shared mailbox (you finish it in Exchange; the portal cannot yet)"
    DELETE = "delete", "Leave it for deletion (Microsoft deletes it 30 days after the license goes)"


MAILBOX_OUTCOMES = {
    Mailbox.KEEP: "The mailbox stays: the license that carries it is still assigned.",
    Mailbox.SHARED: "Not yet done by the portal: Microsoft Graph cannot convert a mailbox to a shared mailbox. "
                    "Convert it in the Exchange admin center (or with Set-Mailbox -Type Shared), then remove the "
                    "remaining license from this page. The license was kept so that nothing is lost meanwhile.",
    Mailbox.DELETE: "Microsoft keeps the mailbox for 30 days after its last license was removed, then deletes it. "
                    "Assign a license again within those days to keep it.",
}


def carries_mailbox(assignment: LicenseAssignment) -> bool:
    disabled = {str(p).lower() for p in assignment.disabled_plans or []}
    return any(
        plan.get("name") in MAILBOX_PLANS and str(plan.get("id")).lower() not in disabled
        for plan in assignment.sku.service_plans or []
    )


@transaction.atomic
def directory_user_offboard(*, organization, user: DirectoryUser, mailbox: str, actor: Actor) -> ProvisioningOperation:
    """Queue the offboarding of a leaver. Asking again while it runs returns the same operation."""
    if mailbox not in Mailbox.values:
        raise DirectoryActionRefused("invalid", "Choose what happens to the user's mailbox.", field="mailbox")
    user = lock_user(organization, user)
    if active_operation(organization, user, kinds=(OFFBOARD,)) is None and active_operation(
        organization, user, kinds=(BLOCK, UNBLOCK, PASSWORD_RESET)
    ) is not None:
        raise DirectoryActionRefused("in_progress", "Another change to this user is still in progress. Wait a moment "
                                                    "and try again.")
    return enqueue_for_user(organization=organization, user=user, kind=OFFBOARD, payload={"mailbox": mailbox},
                             actor=actor, audit_action="directory.offboard_requested", metadata={"mailbox": mailbox})


@register_operation(OFFBOARD, max_attempts=8)
def _run_offboard(operation: ProvisioningOperation) -> dict:
    organization = operation.organization
    user = target_user(operation)
    mailbox = operation.payload.get("mailbox", Mailbox.DELETE)
    block_sign_in(operation, user)
    held = list(
        LicenseAssignment.objects.for_org(organization).select_for_update().select_related("sku")
        .filter(user=user, state__in=[State.ASSIGNED, State.PENDING, State.REMOVING]).order_by("pk")
    )
    if any(a.state == State.PENDING for a in held):
        # A license is being assigned right now; removing it must wait until Microsoft has answered.
        raise OperationInProgress("Waiting for a license assignment in flight to finish.", retry_in=30)
    keep = [a for a in held if mailbox != Mailbox.DELETE and carries_mailbox(a)]
    remove = [a for a in held if a not in keep]
    actor = actor_of_operation(operation)
    # The admin who asked, if still a member: row-level security on users (decision 043) hides one who has left.
    requested_by = User.objects.filter(pk=operation.requested_by_id).first() if operation.requested_by_id else None
    for assignment in remove:
        if assignment.state == State.ASSIGNED:
            try:
                license_unassign(organization=organization, assignment=assignment, actor=actor,
                                 requested_by=requested_by)
            except AssignmentRefused:
                raise OperationInProgress("Waiting for a license change in flight to finish.", retry_in=30) from None
    operation_milestone(operation, "licenses_removal_queued")
    audit_record(actor=actor, action="directory.user_offboarded", organization=organization, target=user,
                 metadata={"operation": str(operation.pk), "mailbox": mailbox, "licenses_removed": len(remove),
                           "licenses_kept": len(keep)})
    return {
        "mailbox": mailbox,
        "mailbox_outcome": MAILBOX_OUTCOMES[Mailbox(mailbox)],
        "licenses_removed": [a.sku.label for a in remove],
        "licenses_kept": [a.sku.label for a in keep],
    }
