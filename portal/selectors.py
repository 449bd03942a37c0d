"""Reads for the overview page.

Every function takes the organisation explicitly and runs a fixed number of
queries, whatever the size of the organisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, F, Func, Q, Subquery
from django.utils import timezone

from accounts.models import Membership, MicrosoftTenant
from accounts.roles import Role
from core.models import AuditEvent
from licensing.models import TenantSku
from licensing.selectors.seats import over_assigned_pools
from security.selectors import ActorLabel, audit_actor_labels, humanize_action

RECENT_ACTIVITY_LIMIT = 5
ACTIVITY_WINDOW_DAYS = 30


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
    # Seat pools the reconcile found over-assigned, until resolved (licensing, decision 011).
    over_assigned: list = field(default_factory=list)

    @property
    def owner_hint(self) -> str:
        return f"{self.owner_count} owner{'' if self.owner_count == 1 else 's'}"

    @property
    def tenant_linked(self) -> bool:
        statuses = MicrosoftTenant.RelationshipStatus
        return self.tenant is not None and self.tenant.relationship_status in (statuses.ACTIVE, statuses.EXPIRING)


def organization_overview(*, organization, pools: list[TenantSku] | None = None) -> OrganizationOverview:
    """Summary cards for the overview page: five queries at most, however big the organisation; four given every
    seat pool already read in name order (``pools``, from the page's license figures)."""
    members = Membership.objects.filter(organization=organization).aggregate(
        total=Count("id"), owners=Count("id", filter=Q(role=Role.OWNER))
    )
    tenant = MicrosoftTenant.objects.for_org(organization).first()
    events = AuditEvent.objects.for_org(organization)
    since = timezone.now() - timedelta(days=ACTIVITY_WINDOW_DAYS)
    # The 30-day count rides on the latest events as one uncorrelated subquery (computed once, not per row): no
    # events at all means no rows and a count of 0.
    in_window = events.filter(occurred_at__gte=since).order_by().annotate(n=Func(F("pk"), function="COUNT"))
    recent = list(events.annotate(in_window=Subquery(in_window.values("n")))
                  .order_by("-sequence")[:RECENT_ACTIVITY_LIMIT])
    events_last_30_days = recent[0].in_window if recent else 0
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
        over_assigned=list(over_assigned_pools(organization, pools=pools)),
    )
