"""Reads for the activity log: the tenant's audit events and who did them.

Every function takes the organisation explicitly (or runs in its tenant context) and runs
a fixed number of queries, whatever the size of the organisation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from accounts.models import ApiKey, User
from core.models import AuditEvent


@dataclass(frozen=True)
class ActorLabel:
    """How an audit event's actor is shown: a name, and for members their email."""

    name: str
    email: str = ""
    kind: str = ""


_SYSTEM_LABEL = "System"


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def audit_actor_labels(events, *, organization) -> dict[tuple[str, str], ActorLabel]:
    """Labels for the actors of ``events``, keyed by (actor_type, actor_id): at most two queries.

    Reseller staff are named but their email is not shown to customers. A user who
    no longer exists (or was erased) shows as "Former user".
    """
    types = AuditEvent.ActorType
    user_ids = {e.actor_id for e in events if e.actor_type in (types.USER, types.STAFF)}
    key_ids = {e.actor_id for e in events if e.actor_type == types.API_KEY}
    users = {}
    if user_ids:
        valid = [u for u in map(_as_uuid, user_ids) if u is not None]
        users = {str(u.pk): u for u in User.objects.filter(pk__in=valid)}
    keys = {}
    if key_ids:
        valid = [k for k in map(_as_uuid, key_ids) if k is not None]
        keys = {str(k.pk): k for k in ApiKey.objects.for_org(organization).filter(pk__in=valid)}

    labels: dict[tuple[str, str], ActorLabel] = {}
    for event in events:
        key = (event.actor_type, event.actor_id)
        if key in labels:
            continue
        if event.actor_type == types.USER:
            user = users.get(event.actor_id)
            labels[key] = (
                ActorLabel(user.full_name or user.email, user.email, "Member")
                if user
                else ActorLabel("Former user", "", "Member")
            )
        elif event.actor_type == types.STAFF:
            user = users.get(event.actor_id)
            name = (user.full_name or "Support engineer") if user else "Support engineer"
            labels[key] = ActorLabel(name, "", "Reseller staff")
        elif event.actor_type == types.API_KEY:
            api_key = keys.get(event.actor_id)
            labels[key] = ActorLabel(f"API key {api_key.name}" if api_key else "Deleted API key", "", "API key")
        else:
            labels[key] = ActorLabel(f"{_SYSTEM_LABEL} ({event.actor_id})" if event.actor_id else _SYSTEM_LABEL, "", "")
    return labels


def organization_activity():
    """The current tenant's audit events (the manager scopes them to the tenant context)."""
    return AuditEvent.objects.all()


def organization_action_choices(organization, limit: int = 200) -> list[tuple[str, str]]:
    """The actions that occur in this organisation's log, for the filter menu."""
    actions = (
        AuditEvent.objects.for_org(organization).order_by("action").values_list("action", flat=True).distinct()[:limit]
    )
    return [(action, humanize_action(action)) for action in actions]


def humanize_action(action: str) -> str:
    return str(action).replace(".", " ").replace("_", " ").strip().capitalize()
