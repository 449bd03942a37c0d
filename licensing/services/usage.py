"""Usage snapshots, reporting preferences, reclaiming inactive users' licenses and reduce-at-renewal proposals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from core.audit import Actor, audit_record
from licensing.models import BulkJob, LicenseAssignment, ReductionProposal, UsageSnapshot
from licensing.selectors import usage as selectors_usage

from . import subscriptions as subscription_services
from .bulk import bulk_job_confirm, bulk_preview_selection


@transaction.atomic
def usage_snapshot_take(*, organization, day: date | None = None) -> int:
    """Record today's seats per SKU. Idempotent per (SKU, day): a second run the same day overwrites."""
    day = day or timezone.now().date()
    prices = selectors_usage.monthly_unit_prices(organization)
    count = 0
    for row in selectors_usage.pool_rows(organization):
        price, currency = prices.get(str(row.sku.sku_id).lower(), (None, ""))
        UsageSnapshot.objects.for_org(organization).update_or_create(
            organization=organization, sku=row.sku, day=day,
            defaults={"purchased": row.purchased, "assigned": row.assigned, "available": row.available,
                      "unit_price_monthly": price, "currency": currency},
        )
        count += 1
    return count


@transaction.atomic
def licenses_reclaim(
    *, organization, assignments: Sequence[LicenseAssignment], actor: Actor, requested_by=None
) -> list[BulkJob]:
    """Unassign licenses of inactive users: one bulk job per SKU, run at once (the preview was the report)."""
    by_sku: dict = {}
    for assignment in assignments:
        by_sku.setdefault(assignment.sku_id, (assignment.sku, []))[1].append(assignment.user)
    jobs = []
    for sku, users in by_sku.values():
        job = bulk_preview_selection(
            organization=organization, sku=sku, action=BulkJob.Action.UNASSIGN, users=users, actor=actor,
            created_by=requested_by, source=BulkJob.Source.RECLAIM,
        )
        jobs.append(bulk_job_confirm(organization=organization, job=job, actor=actor, requested_by=requested_by))
    return jobs


@transaction.atomic
def reduction_propose(*, organization, sku, reduce_by: int, actor: Actor, proposed_by=None) -> ReductionProposal:
    """Propose fewer seats at the next renewal; an owner must approve before anything is scheduled."""
    subscriptions = selectors_usage.live_subscriptions_for_sku(organization, sku)
    if not subscriptions:
        raise ValidationError("There is no live subscription for this license to reduce at renewal.")
    subscription = max(subscriptions, key=lambda s: s.quantity)
    if reduce_by < 1 or reduce_by >= subscription.quantity:
        raise ValidationError({"reduce_by": f"Reduce by 1 to {subscription.quantity - 1} seat(s)."})
    proposal = ReductionProposal(organization=organization, sku=sku, subscription=subscription, reduce_by=reduce_by,
                                 proposed_by=proposed_by)
    proposal.full_clean()
    proposal.save()
    audit_record(actor=actor, action="licensing.reduction_proposed", organization=organization, target=proposal,
                 metadata={"reduce_by": reduce_by, "subscription": str(subscription.pk)})
    return proposal


@transaction.atomic
def reduction_decide(
    *, organization, proposal: ReductionProposal, approve: bool, actor: Actor, decided_by, role: str
) -> ReductionProposal:
    """The owner approves (the change is scheduled for the next term) or rejects."""
    if role != Role.OWNER:
        raise PermissionDenied("Only an owner can approve a reduction at renewal.")
    proposal = ReductionProposal.objects.for_org(organization).select_for_update().get(pk=proposal.pk)
    if proposal.status != ReductionProposal.Status.PROPOSED:
        return proposal
    proposal.status = ReductionProposal.Status.APPROVED if approve else ReductionProposal.Status.REJECTED
    proposal.decided_by = decided_by
    proposal.decided_at = timezone.now()
    proposal.save()
    if approve and proposal.subscription is not None:
        schedule_next_term_quantity(
            organization=organization, subscription=proposal.subscription,
            quantity=proposal.subscription.quantity - proposal.reduce_by, actor=actor,
        )
    audit_record(actor=actor, action=f"licensing.reduction_{'approved' if approve else 'rejected'}",
                 organization=organization, target=proposal, metadata={"reduce_by": proposal.reduce_by})
    return proposal


def schedule_next_term_quantity(*, organization, subscription, quantity: int, actor: Actor) -> None:
    """Hand the approved reduction to the subscriptions service, which owns scheduled changes."""
    subscription_services.subscription_schedule_change(subscription=subscription, actor=actor, quantity=quantity)
