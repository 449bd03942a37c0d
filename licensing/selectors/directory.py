"""Reads for the directory, assignments, bulk jobs and notifications. Tenant-scoped; constant queries per page."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import NamedTuple

from django.db.models import Count, Q, QuerySet, Window
from django.shortcuts import get_object_or_404
from django.utils import timezone

from core.crypto import blind_index
from core.tenancy import unscoped_no_tenant
from licensing.models import (
    BulkJob,
    DirectorySync,
    DirectoryUser,
    LicenseAssignment,
    Notification,
    ReductionProposal,
    ServiceAnnouncement,
    TenantSku,
    inactive_since,
)
from licensing.models.directory import MAIL_INDEX, UPN_INDEX

from .settings import licensing_settings
from .usage import seats_free

State = LicenseAssignment.State


def latest_sync(organization) -> DirectorySync | None:
    return DirectorySync.objects.for_org(organization).order_by("-created_at").first()


def directory_users(organization, *, q: str = "", sku=None, status: str = "") -> QuerySet[DirectoryUser]:
    """Current directory users, filtered. Search is exact (UPN or mail) through the blind indexes."""
    users = DirectoryUser.objects.for_org(organization).filter(removed_at__isnull=True)
    if q:
        users = users.filter(Q(upn_index=blind_index(UPN_INDEX, q)) | Q(mail_index=blind_index(MAIL_INDEX, q)))
    # Uncorrelated "user id in (...)" subqueries: SQLite, without statistics, runs a correlated
    # EXISTS through the (organization, sku, state) index once per user, quadratic in the directory.
    held = LicenseAssignment.objects.for_org(organization).filter(state__in=LicenseAssignment.SEAT_HOLDING)
    if sku is not None:
        held = held.filter(sku=sku)
    held = held.values("user_id")
    if status == "licensed":
        users = users.filter(pk__in=held)
    elif status == "unlicensed":
        users = users.exclude(pk__in=held)
    elif status == "inactive":
        cutoff = timezone.now() - timedelta(days=licensing_settings(organization).inactive_days)
        users = users.filter(pk__in=held).filter(inactive_since(cutoff))
    elif status == "no_location":
        users = users.filter(has_usage_location=False)
    elif status == "failed":
        failed = LicenseAssignment.objects.for_org(organization).filter(state=State.FAILED)
        users = users.filter(pk__in=(failed.filter(sku=sku) if sku is not None else failed).values("user_id"))
    elif sku is not None:
        users = users.filter(pk__in=held)
    return users.order_by("created_at", "pk")


class PageLicense(NamedTuple):
    """One license of a user on a page of the directory, as the API lists it."""

    assignment_id: uuid.UUID
    sku_id: uuid.UUID
    sku_label: str
    state: str


def attach_assignments(organization, users) -> None:
    """Give each user of a page ``current_assignments`` (``PageLicense`` rows) in one query (no N+1).

    Plain rows, not model instances: the SKU's plans and sync columns would be read and converted for every
    license and never shown, which was most of this read's time at 25 users.
    """
    users = list(users)
    by_user: dict = {u.pk: [] for u in users}
    rows = (
        LicenseAssignment.objects.for_org(organization)
        .filter(user__in=list(by_user), state__in=[*LicenseAssignment.SEAT_HOLDING, State.FAILED, State.HANDING_OVER])
        .order_by("created_at", "pk")
        .values_list("user_id", "pk", "sku__sku_id", "sku__display_name", "sku__sku_part_number", "state")
    )
    for user_id, pk, sku_id, display_name, part_number, state in rows:
        by_user[user_id].append(PageLicense(pk, sku_id, TenantSku.label_of(display_name, part_number, sku_id), state))
    for user in users:
        user.current_assignments = by_user[user.pk]


def directory_user(organization, pk) -> DirectoryUser:
    return get_object_or_404(DirectoryUser.objects.for_org(organization), pk=pk)


def user_assignments(organization, user) -> QuerySet[LicenseAssignment]:
    return LicenseAssignment.objects.for_org(organization).filter(user=user).select_related("sku").order_by(
        "sku__display_name"
    )


def bulk_job(organization, pk) -> BulkJob:
    """A bulk job as its page shows it; another organisation's gives 404."""
    return bulk_job_with_current_seats(
        organization, get_object_or_404(BulkJob.objects.for_org(organization).select_related("sku"), pk=pk)
    )


def bulk_job_with_current_seats(organization, job: BulkJob) -> BulkJob:
    """A preview's free seats counted now, not saved: seats bought after the dry run must enable Confirm.

    Reads only. The figure is advisory; confirming reserves the seats under the pool lock.
    """
    if job.status == BulkJob.Status.PREVIEW and job.action == BulkJob.Action.ASSIGN:
        job.seats_available = seats_free(organization, job.sku)
    return job


def bulk_failures(organization, job: BulkJob) -> QuerySet[LicenseAssignment]:
    """Users the job could not change, with the reason and the fix."""
    return (
        LicenseAssignment.objects.for_org(organization)
        .filter(bulk_job=job)
        .filter(Q(state=State.FAILED) | Q(~Q(error_code=""), state=State.ASSIGNED))
        .select_related("user")[:200]
    )


def open_proposals(organization) -> QuerySet[ReductionProposal]:
    return ReductionProposal.objects.for_org(organization).filter(
        status=ReductionProposal.Status.PROPOSED
    ).select_related("sku", "subscription")


def announcements(organization) -> QuerySet[ServiceAnnouncement]:
    """The live announcements ``organization`` is shown. Read in its tenant context: row-level security on the
    targeting table shows only the rows naming it, so another organisation's targeting is never joined."""
    return ServiceAnnouncement.objects.visible_to(organization)


def announcement_target_ids(announcement: ServiceAnnouncement) -> list[uuid.UUID]:
    """The organisations a targeted announcement names, for staff editing it: every organisation's targeting
    rows, read as the system role (committed rows only; one statement)."""
    if announcement.pk is None:
        return []
    with unscoped_no_tenant(atomic=False):
        return list(
            ServiceAnnouncement.organizations.through.objects.filter(serviceannouncement_id=announcement.pk)
            .order_by("organization_id").values_list("organization_id", flat=True)
        )


def bell_context(organization, user) -> dict:
    """Unread count and the latest few, for the header bell on every page. Two queries: the count rides on the
    latest rows as a window over all unread ones (evaluated before the limit), so it needs no query of its own;
    with nothing unread there is no row and the count is 0."""
    unread = Notification.objects.for_org(organization).filter(recipient=user, read_at__isnull=True)
    latest = list(unread.annotate(unread_total=Window(Count("pk")))[:5])
    return {"unread_count": latest[0].unread_total if latest else 0, "latest": latest,
            "announcements": list(announcements(organization)[:3])}
