"""Reads for the activity log (the tenant's audit events and who did them) and the customer's fraud cases.

Every function takes the organisation explicitly (or runs in its tenant context) and runs
a fixed number of queries, whatever the size of the organisation.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django.db.models import Q

from accounts.models import ApiKey, Membership, User
from core.models import AuditEvent
from security.models import FraudCase


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
    no longer exists, was erased or is no longer a member of ``organization`` shows as "Former user":
    their name is no longer the organisation's to see, which row-level security on users enforces too
    (docs/decisions/043-row-level-security-on-users.md); filtering here says the same on any connection.
    """
    types = AuditEvent.ActorType
    user_ids = {e.actor_id for e in events if e.actor_type in (types.USER, types.STAFF)}
    key_ids = {e.actor_id for e in events if e.actor_type == types.API_KEY}
    users = {}
    if user_ids:
        valid = [u for u in map(_as_uuid, user_ids) if u is not None]
        members = Membership.objects.filter(organization=organization).values("user_id")
        named = User.objects.filter(Q(pk__in=members) | Q(is_staff=True), pk__in=valid)
        users = {str(u.pk): u for u in named}
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


# -- Azure fraud cases, as the customer sees them ---------------------------------------------------------
# What each signal means, in the customer's words. Microsoft's event types and ours; an unknown one is shown
# as its name split into words.
FRAUD_SIGNAL_LABELS = {
    "NetworkConnectionsToCryptoMiningPools": "Network connections to crypto-mining pools",
    "UsageAnomalyDetection": "Usage anomaly reported by Microsoft",
    "spend_spike": "Daily spend far above usual",
    "new_region": "Resources in a region not used before",
    "gpu_vm_family": "GPU virtual machines appeared",
    "high_core_vm_family": "High-core virtual machines appeared",
}

# The evidence keys a customer may see, with their labels: Microsoft's event fields and our anomaly's figures.
# Anything else in a case's evidence (a failed plan lookup's error text, the responder's notes on why a
# suspension did not happen) is staff-internal and never reaches the page.
FRAUD_EVIDENCE_LABELS = {
    "eventId": "Microsoft event id",
    "eventType": "Microsoft event type",
    "eventStatus": "Microsoft event status",
    "severity": "Severity",
    "confidenceLevel": "Confidence",
    "hitCount": "Occurrences",
    "firstOccurrence": "First seen",
    "lastOccurrence": "Last seen",
    "serviceName": "Azure service",
    "resourceName": "Azure resource",
    "description": "Description",
    "day": "Day",
    "spend": "Spend that day",
    "baseline": "Usual daily spend (median of the previous days)",
    "currency": "Currency",
    "ratio": "Times the usual spend",
    "regions": "New regions",
    "known": "Regions used before",
    "sizes": "New virtual machine sizes",
}


def fraud_signal_label(signal: str) -> str:
    if signal in FRAUD_SIGNAL_LABELS:
        return FRAUD_SIGNAL_LABELS[signal]
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", str(signal)).replace("_", " ").strip()
    return words[:1].upper() + words[1:].lower()


def organization_fraud_cases():
    """The current tenant's Azure fraud cases, newest first (the manager scopes them to the tenant context)."""
    return FraudCase.objects.select_related("subscription").order_by("-created_at", "-pk")


def fraud_case_evidence(case: FraudCase) -> list[tuple[str, str]]:
    """The case's evidence a customer may see, as (label, text) in a fixed order; lists joined with commas."""
    evidence = case.evidence if isinstance(case.evidence, dict) else {}
    shown = []
    for key, label in FRAUD_EVIDENCE_LABELS.items():
        value = evidence.get(key)
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, list | tuple):
            text = ", ".join(str(item) for item in value)
        elif isinstance(value, dict):
            continue  # no nested structure is customer evidence today
        else:
            text = str(value)
        shown.append((label, text[:1000]))
    return shown
