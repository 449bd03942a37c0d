"""Reads for the directory user actions: the operations of a user, their timelines and outcomes."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime

from licensing.models import DirectoryUser, ProvisioningOperation
from licensing.services.directory import users as user_services

STEPS = {
    user_services.CREATE: (("submitted", "Requested"), ("created", "Created in Microsoft 365"),
                           ("in_directory", "In your directory")),
    user_services.PASSWORD_RESET: (("submitted", "Requested"), ("password_set", "New password set in Microsoft 365")),
    user_services.BLOCK: (("submitted", "Requested"), ("sign_in_blocked", "Sign-in blocked"),
                          ("sessions_revoked", "Signed out of every session")),
    user_services.UNBLOCK: (("submitted", "Requested"), ("sign_in_allowed", "Sign-in allowed")),
    user_services.OFFBOARD: (("submitted", "Requested"), ("sign_in_blocked", "Sign-in blocked"),
                             ("sessions_revoked", "Signed out of every session"),
                             ("licenses_removal_queued", "License removal sent to Microsoft")),
}


def user_action_operations(organization) -> QuerySet[ProvisioningOperation]:
    return ProvisioningOperation.objects.for_org(organization).filter(
        kind__in=user_services.USER_ACTION_KINDS
    ).order_by("-created_at")


def user_action_operation(organization, pk) -> ProvisioningOperation:
    return get_object_or_404(user_action_operations(organization), pk=pk)


def operations_of_user(organization, user: DirectoryUser, *, limit: int = 5) -> list[ProvisioningOperation]:
    rows = user_action_operations(organization).filter(target_type="DirectoryUser", target_id=str(user.pk))
    operations = list(rows[:limit])
    for operation in operations:
        operation.action_label = user_services.KIND_LABELS.get(operation.kind, operation.kind)
    return operations


def action_timeline(operation: ProvisioningOperation) -> list[dict]:
    """The steps of a user action, done or not, in the shape of ``licensing/_timeline.html``."""
    steps = []
    for key, label in STEPS.get(operation.kind, ()):
        stamp = operation.milestones.get(key)
        steps.append({"key": key, "label": label, "at": parse_datetime(stamp) if stamp else None,
                      "done": key in operation.milestones})
    return steps


def action_outcome(operation: ProvisioningOperation) -> dict:
    """What the admin is told once the action succeeded; never the password itself."""
    if operation.status != ProvisioningOperation.Status.SUCCEEDED:
        return {}
    result = operation.result or {}
    keys = ("mailbox", "mailbox_outcome", "licenses_removed", "licenses_kept", "account_enabled",
            "password_expires_at", "password_revealed_at", "password_expired_at")
    return {key: result[key] for key in keys if key in result}


def user_action_state(organization, user: DirectoryUser) -> dict:
    """For the user page's action panel: what is in flight, and the last actions with their links."""
    recent = operations_of_user(organization, user)
    active = [op for op in recent if not op.is_terminal]
    offboarded = next((op for op in recent if op.kind == user_services.OFFBOARD
                       and op.status == ProvisioningOperation.Status.SUCCEEDED), None)
    return {"recent": recent, "active": active[0] if active else None, "offboarded": offboarded}
