"""Directory sync: users (with sign-in activity) and subscribed SKUs from Graph, per tenant.

Streamed: one Graph page (up to 999 users) is fetched, written and committed at a time with
the run's progress, so memory stays flat for any directory size and the UI can show how far
it got. Unchanged users cost one keyed hash comparison and no write. Every user write goes through
:func:`directory_user_upsert_from_graph`, which leaves privacy-locked fields alone.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import MicrosoftTenant
from licensing.microsoft import errors as ms
from licensing.microsoft.client import default_client
from licensing.microsoft.disclosure import PersonalData, Purpose
from licensing.microsoft.resources import BatchItemResult
from licensing.models import DirectorySync, DirectoryUser, LicenseAssignment, Sku, TenantSku
from portal.tenancy import tenant_context
from privacy.field_locks import locked_fields
from privacy.registry import Category
from security.audit import Actor, audit_record
from security.crypto import blind_index

logger = logging.getLogger("licensing.directory")

USER_SELECT = (
    "id", "displayName", "userPrincipalName", "mail", "jobTitle", "usageLocation", "accountEnabled",
    "assignedLicenses",
)
PAGE_SIZE = 999
# A running sync that has not written a page for this long is presumed dead and may be restarted.
STALE_AFTER = timedelta(minutes=15)
SOURCE_HASH_PURPOSE = "directory-user-source"
SYNC_TASK = "licensing.directory.run_sync"
SKU_REFRESH_TASK = "licensing.directory.refresh_skus"

# Graph property -> DirectoryUser field; these are the fields a privacy correction can lock.
GRAPH_FIELDS = {
    "displayName": "display_name",
    "userPrincipalName": "user_principal_name",
    "mail": "mail",
    "jobTitle": "job_title",
    "usageLocation": "usage_location",
    "accountEnabled": "account_enabled",
}


class DirectoryGraph(Protocol):
    """What the sync and the assignments need from Graph, bound to one customer tenant."""

    def user_pages(self, *, select: Sequence[str], page_size: int) -> Iterator[list[dict]]: ...

    def user_page_links(
        self, *, select: Sequence[str], page_size: int, start_link: str | None = None
    ) -> Iterator[tuple[list[dict], str | None]]:
        """Pages with the link to the next one (None after the last), starting at ``start_link`` if given."""

    def subscribed_skus(self) -> list[dict]: ...

    def batch(self, requests: list[dict], *, request_id: str) -> list[BatchItemResult]:
        """At most 20 assignLicense requests -> one typed result per request, in input order."""


class DirectoryNotLinked(Exception):
    """The organisation has no linked Microsoft tenant to read a directory from."""


class TenantGraph:
    """The Microsoft client's Graph, bound to one organisation's tenant: the seam tests replace."""

    def __init__(self, *, graph, organization, tenant_id: str):
        self.graph = graph
        self.organization = organization
        self.tenant_id = tenant_id

    def user_pages(self, *, select: Sequence[str], page_size: int) -> Iterator[list[dict]]:
        pages = self.graph.iter_user_pages(tenant_id=self.tenant_id, select=[*select, "signInActivity"], top=page_size)
        try:
            first = next(pages, None)
        except ms.Forbidden:
            # Sign-in activity needs Entra ID P1 and AuditLog.Read.All; without them, sync the rest.
            pages = self.graph.iter_user_pages(tenant_id=self.tenant_id, select=list(select), top=page_size)
            first = next(pages, None)
        if first is None:
            return
        yield [u.raw for u in first]
        for page in pages:
            yield [u.raw for u in page]

    def user_page_links(
        self, *, select: Sequence[str], page_size: int, start_link: str | None = None
    ) -> Iterator[tuple[list[dict], str | None]]:
        def listing(fields, link=None):
            return self.graph.iter_user_page_links(tenant_id=self.tenant_id, select=fields, top=page_size,
                                                   start_link=link)

        pages = listing([*select, "signInActivity"], start_link)
        try:
            first = next(pages, None)
        except ms.Forbidden:
            if start_link:
                raise
            # Sign-in activity needs Entra ID P1 and AuditLog.Read.All; without them, sync the rest.
            pages = listing(list(select))
            first = next(pages, None)
        except ms.InvalidRequest:
            if not start_link:
                raise
            # The saved link expired (skip tokens do not last for ever): list from the start instead.
            pages = listing([*select, "signInActivity"])
            first = next(pages, None)
        if first is None:
            return
        yield [u.raw for u in first[0]], first[1]
        for users, following in pages:
            yield [u.raw for u in users], following

    def subscribed_skus(self) -> list[dict]:
        return [s.raw for s in self.graph.subscribed_skus(tenant_id=self.tenant_id)]

    def batch(self, requests: list[dict], *, request_id: str) -> list[BatchItemResult]:
        personal = PersonalData.of(
            [Category.IDENTITY], purpose=Purpose.LICENSE_MANAGEMENT, organization=self.organization,
            subject_count=len(requests),
        )
        return self.graph.batch(
            tenant_id=self.tenant_id, requests=requests, request_id=request_id, personal=personal,
            operation="users.assign_license_batch",
        )


def graph_for(organization) -> DirectoryGraph:
    """The Graph client for the organisation's tenant: the one seam between these services and Graph."""
    tenant = linked_tenant(organization)
    return TenantGraph(graph=default_client().graph, organization=organization, tenant_id=str(tenant.tenant_id))


def linked_tenant(organization) -> MicrosoftTenant:
    tenant = MicrosoftTenant.objects.for_org(organization).filter(tenant_id__isnull=False).first()
    if tenant is None:
        raise DirectoryNotLinked("Link a Microsoft tenant before syncing its directory.")
    return tenant


# --- requesting a sync ---------------------------------------------------------------------------------


@transaction.atomic
def directory_sync_request(
    *, organization, actor: Actor, trigger: str = DirectorySync.Trigger.MANUAL, requested_by=None
) -> DirectorySync:
    """Queue a sync, or return the one already in flight (one per organisation, by constraint)."""
    linked_tenant(organization)
    current = _in_flight(organization)
    if current is not None and not _is_stale(current):
        return current
    if current is not None:
        _finish(current, DirectorySync.Status.FAILED, "stale", "The sync stopped responding and was restarted.")
    try:
        with transaction.atomic():
            sync = DirectorySync(organization=organization, trigger=trigger, requested_by=requested_by)
            sync.full_clean()
            sync.save()
    except IntegrityError:
        return _in_flight(organization)
    audit_record(actor=actor, action="directory.sync_requested", organization=organization, target=sync,
                 metadata={"trigger": trigger})
    transaction.on_commit(
        lambda: enqueue(SYNC_TASK, sync_id=str(sync.pk), org_id=str(organization.pk))
    )
    return sync


def enqueue(task_name: str, **kwargs) -> None:
    """Dispatch a task by its registered name: tasks import services, so services do not import tasks."""
    current_app.tasks[task_name].apply_async(kwargs=kwargs)


def enqueue_on_commit(task_name: str, **kwargs) -> None:
    """Dispatch once the caller's transaction commits. A follow-up refresh that cannot be queued (broker
    down) must not undo the work that asked for it: ``robust`` logs the failure, the periodic jobs catch up."""
    transaction.on_commit(lambda: enqueue(task_name, **kwargs), robust=True)


def tenant_skus_refresh_later(*, organization_id) -> None:
    """After a purchase or a seat change: refresh the seat pools (not the users) once the change is committed."""
    enqueue_on_commit(SKU_REFRESH_TASK, organization_id=str(organization_id))


def tenant_skus_refresh(*, organization, graph: DirectoryGraph | None = None) -> int:
    """Re-read the tenant's subscribedSkus only: purchased and free seats without a full directory sync.

    Returns the number of SKUs read, or -1 when Graph cannot tell us (no tenant link, no consent yet);
    the next directory sync reads them then.
    """
    try:
        graph = graph or graph_for(organization)
        skus = graph.subscribed_skus()
    except DirectoryNotLinked:
        return -1
    except ms.MicrosoftError as exc:
        if exc.retryable:
            raise
        logger.info("Seat refresh for %s skipped: %s", organization.pk, exc.code or type(exc).__name__)
        return -1
    return tenant_skus_upsert_from_graph(organization=organization, skus=skus)


def _in_flight(organization) -> DirectorySync | None:
    return (
        DirectorySync.objects.for_org(organization)
        .filter(status__in=[DirectorySync.Status.QUEUED, DirectorySync.Status.RUNNING])
        .first()
    )


def _is_stale(sync: DirectorySync) -> bool:
    last = sync.heartbeat_at or sync.created_at
    return last < timezone.now() - STALE_AFTER


def _finish(sync: DirectorySync, status: str, code: str = "", message: str = "") -> None:
    sync.status = status
    sync.finished_at = timezone.now()
    sync.error_code = code[:64]
    sync.error_message = message[:500]
    sync.next_link = ""
    sync.save(update_fields=["status", "finished_at", "error_code", "error_message", "next_link", "updated_at"])


# --- running a sync --------------------------------------------------------------------------------------


def directory_sync_run(*, organization, sync_id, graph: DirectoryGraph | None = None) -> DirectorySync:
    """Carry out a queued sync. Safe to repeat: a finished run is left alone; a redelivered one (worker
    lost, or retried after throttling) continues from the Graph page after the last one written.

    Not one transaction on purpose: each page commits in its own tenant transaction, together with
    the link to the next page, so progress is visible while it runs and a crash loses at most one
    page. Call it outside any transaction.
    """
    with tenant_context(organization):
        sync = DirectorySync.objects.for_org(organization).select_for_update().get(pk=sync_id)
        if not sync.is_active:
            return sync
        resume_from = sync.next_link if sync.status == DirectorySync.Status.RUNNING else ""
        if resume_from:
            sync.resumed += 1
        sync.status = DirectorySync.Status.RUNNING
        sync.started_at = sync.started_at or timezone.now()
        sync.heartbeat_at = timezone.now()
        sync.save(update_fields=["status", "started_at", "heartbeat_at", "resumed", "updated_at"])
    try:
        graph = graph or graph_for(organization)
        with tenant_context(organization):
            sync.skus_seen = tenant_skus_upsert_from_graph(organization=organization, skus=graph.subscribed_skus())
            sync.save(update_fields=["skus_seen", "updated_at"])
            skus = {s.sku_id: s for s in TenantSku.objects.for_org(organization)}
        pages = graph.user_page_links(select=USER_SELECT, page_size=PAGE_SIZE, start_link=resume_from or None)
        for users, next_link in pages:
            with tenant_context(organization):
                counts = directory_user_upsert_from_graph(organization=organization, users=users, sync=sync, skus=skus)
                sync.pages += 1
                sync.users_seen += len(users)
                sync.users_created += counts["created"]
                sync.users_updated += counts["updated"]
                sync.users_unchanged += counts["unchanged"]
                sync.heartbeat_at = timezone.now()
                sync.next_link = next_link or ""
                sync.save(update_fields=["pages", "users_seen", "users_created", "users_updated", "users_unchanged",
                                         "heartbeat_at", "next_link", "updated_at"])
        with tenant_context(organization):
            sync.users_removed = _mark_missing_users_removed(organization, sync)
            sync.save(update_fields=["users_removed", "updated_at"])
            _finish(sync, DirectorySync.Status.SUCCEEDED)
            audit_record(
                actor=Actor.system("directory-sync"), action="directory.synced", organization=organization,
                target=sync, metadata={"users": sync.users_seen, "created": sync.users_created,
                                       "updated": sync.users_updated, "removed": sync.users_removed},
            )
    except Exception as exc:
        if not getattr(exc, "retryable", False):
            with tenant_context(organization):
                _finish(sync, DirectorySync.Status.FAILED, getattr(exc, "code", "") or type(exc).__name__, str(exc))
        raise
    return sync


@transaction.atomic
def tenant_skus_upsert_from_graph(*, organization, skus: list[dict]) -> int:
    """Seat pools from Graph subscribedSkus. Purchased = enabled + warning (still usable in grace)."""
    existing = {s.sku_id: s for s in TenantSku.objects.for_org(organization)}
    now = timezone.now()
    for item in skus:
        sku_id = uuid.UUID(item["skuId"])
        prepaid = item.get("prepaidUnits") or {}
        sku = existing.get(sku_id) or TenantSku(organization=organization, sku_id=sku_id)
        sku.sku_part_number = item.get("skuPartNumber", "")[:120]
        sku.display_name = _display_name(sku_id, sku.sku_part_number, current=sku.display_name)
        sku.capability_status = item.get("capabilityStatus", "Enabled")[:20]
        sku.purchased = int(prepaid.get("enabled", 0)) + int(prepaid.get("warning", 0))
        sku.suspended = int(prepaid.get("suspended", 0))
        sku.consumed_in_tenant = int(item.get("consumedUnits", 0))
        sku.service_plans = [
            {"id": p.get("servicePlanId"), "name": p.get("servicePlanName")} for p in item.get("servicePlans", [])
        ]
        sku.subscription_ids = list(item.get("subscriptionIds", []))
        sku.applies_to_users = item.get("appliesTo", "User") == "User"
        sku.last_synced_at = now
        sku.full_clean()
        sku.save()
    return len(skus)


def _display_name(sku_id: uuid.UUID, part_number: str, *, current: str = "") -> str:
    """The catalog title when the catalog knows the SKU. Graph's skuId is the catalog's provisioning id;
    Partner Center's catalog carries no part number to match on."""
    title = Sku.objects.filter(provisioning_id__iexact=str(sku_id)).values_list("title", flat=True).first()
    return (title or current or part_number)[:200]


def _source_hash(organization, user: dict) -> str:
    relevant = {key: user.get(key) for key in (*USER_SELECT, "signInActivity")}
    relevant["org"] = str(organization.pk)
    return blind_index(SOURCE_HASH_PURPOSE, json.dumps(relevant, sort_keys=True, default=str))


def _last_sign_in(user: dict) -> datetime | None:
    activity = user.get("signInActivity") or {}
    moments = [
        parse_datetime(v)
        for v in (activity.get("lastSignInDateTime"), activity.get("lastNonInteractiveSignInDateTime"))
        if v
    ]
    moments = [m for m in moments if m is not None]
    return max(moments) if moments else None


def directory_user_upsert_from_graph(
    *, organization, users: Sequence[dict], sync: DirectorySync | None = None, skus: dict | None = None
) -> dict[str, int]:
    """THE write path from Graph into DirectoryUser (and its tenant-side license assignments).

    Takes a page of Graph user objects. Fields locked by a privacy correction are never
    overwritten. Queries per page are constant: one read of the existing rows, one of the
    locks, one of the assignments, then the writes.
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    if not users:
        return counts
    skus = skus if skus is not None else {s.sku_id: s for s in TenantSku.objects.for_org(organization)}
    graph_ids = [uuid.UUID(u["id"]) for u in users]
    existing = {u.graph_id: u for u in DirectoryUser.objects.for_org(organization).filter(graph_id__in=graph_ids)}
    locks = locked_fields(organization, DirectoryUser, [u.pk for u in existing.values()])
    unchanged_ids, changed = [], []
    for payload in users:
        graph_id = uuid.UUID(payload["id"])
        digest = _source_hash(organization, payload)
        row = existing.get(graph_id)
        if row is not None and row.source_hash == digest and row.removed_at is None:
            unchanged_ids.append(row.pk)
            counts["unchanged"] += 1
            continue
        created = row is None
        row = row or DirectoryUser(organization=organization, graph_id=graph_id)
        locked = locks.get(str(row.pk), set())
        for graph_name, field_name in GRAPH_FIELDS.items():
            if field_name in locked:
                continue
            value = payload.get(graph_name)
            if field_name == "account_enabled":
                value = bool(value) if value is not None else True
            elif field_name in ("display_name", "user_principal_name"):
                value = value or ""
            setattr(row, field_name, value)
        row.has_usage_location = bool(row.usage_location)
        if "last_sign_in_at" not in locked and "signInActivity" in payload:
            row.last_sign_in_at = _last_sign_in(payload)
        row.source_hash = digest
        row.last_seen_sync = sync
        row.removed_at = None
        # Field validation only: the uniqueness, constraint and foreign-key checks would cost three
        # queries per user (most of a first sync's time); the rows were just looked up by graph id
        # and the database enforces the same constraints on save.
        row.full_clean(exclude=["last_seen_sync", "organization"], validate_unique=False, validate_constraints=False)
        row.save()
        counts["created" if created else "updated"] += 1
        changed.append((row, payload))
    if unchanged_ids and sync is not None:
        DirectoryUser.objects.for_org(organization).filter(pk__in=unchanged_ids).update(last_seen_sync=sync)
    _reconcile_tenant_assignments(organization, changed, skus, sync)
    return counts


def _reconcile_tenant_assignments(organization, changed, skus: dict, sync: DirectorySync | None) -> None:
    """Make assignments match what Graph says each changed user holds.

    Rows in flight (PENDING/REMOVING) belong to the outbox and are left alone; an ASSIGNED row
    whose license vanished is only dropped if it was assigned before this sync started, so a
    page fetched just before our own assignment landed cannot undo it.
    """
    if not changed:
        return
    started = sync.started_at if sync is not None else timezone.now()
    users = [row for row, _ in changed]
    current: dict[tuple, LicenseAssignment] = {
        (a.user_id, a.sku_id): a for a in LicenseAssignment.objects.for_org(organization).filter(user__in=users)
    }
    now = timezone.now()
    to_create, to_update = [], []
    for row, payload in changed:
        held = {}
        for lic in payload.get("assignedLicenses") or []:
            sku = skus.get(uuid.UUID(lic["skuId"]))
            if sku is not None:
                held[sku.pk] = sorted(lic.get("disabledPlans") or [])
        for sku_pk, plans in held.items():
            assignment = current.get((row.pk, sku_pk))
            if assignment is None:
                to_create.append(LicenseAssignment(
                    organization=organization, user=row, sku_id=sku_pk, state=LicenseAssignment.State.ASSIGNED,
                    source=LicenseAssignment.Source.TENANT, disabled_plans=plans, assigned_at=now,
                ))
            elif assignment.state in (LicenseAssignment.State.FAILED, LicenseAssignment.State.REMOVED):
                assignment.state = LicenseAssignment.State.ASSIGNED
                assignment.disabled_plans = plans
                assignment.assigned_at = now
                assignment.removed_at = None
                to_update.append(assignment)
            elif assignment.state == LicenseAssignment.State.ASSIGNED and assignment.disabled_plans != plans:
                assignment.disabled_plans = plans
                to_update.append(assignment)
        for (user_pk, sku_pk), assignment in current.items():
            if user_pk != row.pk or sku_pk in held:
                continue
            if assignment.state == LicenseAssignment.State.ASSIGNED and (
                assignment.assigned_at is None or assignment.assigned_at < started
            ):
                assignment.state = LicenseAssignment.State.REMOVED
                assignment.removed_at = now
                to_update.append(assignment)
    LicenseAssignment.objects.bulk_create(to_create, ignore_conflicts=True)
    if to_update:
        LicenseAssignment.objects.bulk_update(
            to_update, ["state", "disabled_plans", "assigned_at", "removed_at", "updated_at"]
        )


def _mark_missing_users_removed(organization, sync: DirectorySync) -> int:
    """Users the full listing no longer returned were deleted in the tenant; their seats are free."""
    gone = DirectoryUser.objects.for_org(organization).filter(removed_at__isnull=True).exclude(last_seen_sync=sync)
    now = timezone.now()
    gone_ids = list(gone.values_list("pk", flat=True))
    if not gone_ids:
        return 0
    DirectoryUser.objects.for_org(organization).filter(pk__in=gone_ids).update(removed_at=now, updated_at=now)
    LicenseAssignment.objects.for_org(organization).filter(
        user_id__in=gone_ids, state=LicenseAssignment.State.ASSIGNED
    ).update(state=LicenseAssignment.State.REMOVED, removed_at=now, updated_at=now)
    return len(gone_ids)
