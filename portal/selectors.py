"""Reads for the dashboard shell: the overview page and who did what in the activity log.

Every function takes the organisation explicitly and runs a fixed number of
queries, whatever the size of the organisation.
"""

from __future__ import annotations

import uuid
import zoneinfo
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import ApiKey, Membership, MicrosoftTenant, User
from portal.roles import Role
from security.models import AuditEvent

RECENT_ACTIVITY_LIMIT = 5
ACTIVITY_WINDOW_DAYS = 30


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


def organization_zone(organization) -> zoneinfo.ZoneInfo:
    """The organisation's time zone for display; UTC if the stored name is unknown."""
    try:
        return zoneinfo.ZoneInfo(organization.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def humanize_action(action: str) -> str:
    return str(action).replace(".", " ").replace("_", " ").strip().capitalize()


@dataclass
class RecentEvent:
    event: AuditEvent
    actor: ActorLabel
    summary: str


@dataclass
class OrganizationOverview:
    member_count: int
    owner_count: int
    tenant: MicrosoftTenant | None
    events_last_30_days: int
    recent_events: list[RecentEvent] = field(default_factory=list)

    @property
    def owner_hint(self) -> str:
        return f"{self.owner_count} owner{'' if self.owner_count == 1 else 's'}"

    @property
    def tenant_linked(self) -> bool:
        statuses = MicrosoftTenant.RelationshipStatus
        return self.tenant is not None and self.tenant.relationship_status in (statuses.ACTIVE, statuses.EXPIRING)


def organization_overview(*, organization) -> OrganizationOverview:
    """Summary cards for the overview page: six queries at most, however big the organisation."""
    members = Membership.objects.filter(organization=organization).aggregate(
        total=Count("id"), owners=Count("id", filter=Q(role=Role.OWNER))
    )
    tenant = MicrosoftTenant.objects.for_org(organization).first()
    events = AuditEvent.objects.for_org(organization)
    since = timezone.now() - timedelta(days=ACTIVITY_WINDOW_DAYS)
    events_last_30_days = events.filter(occurred_at__gte=since).count()
    recent = list(events.order_by("-sequence")[:RECENT_ACTIVITY_LIMIT])
    labels = audit_actor_labels(recent, organization=organization)
    return OrganizationOverview(
        member_count=members["total"],
        owner_count=members["owners"],
        tenant=tenant,
        events_last_30_days=events_last_30_days,
        recent_events=[
            RecentEvent(event, labels[(event.actor_type, event.actor_id)], humanize_action(event.action))
            for event in recent
        ],
    )
