"""Requesting and running a directory sync, and the lighter seat-pool refresh.

Streamed: one Graph page (up to 999 users) is fetched, written and committed at a time with
the run's progress, so memory stays flat for any directory size and the UI can show how far
it got. Also the dispatch of tasks by name, which the other licensing services share.
"""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import timedelta

from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from core.tenancy import tenant_context
from licensing.microsoft import errors as ms
from licensing.models import DirectorySync, DirectoryUser, LicenseAssignment, TenantSku

from .graph import DirectoryGraph, DirectoryNotLinked, graph_for, linked_tenant
from .upsert import USER_SELECT, directory_user_upsert_from_graph, tenant_skus_upsert_from_graph

logger = logging.getLogger("licensing.directory")

PAGE_SIZE = 999
# A running sync that has not written a page for this long is presumed dead and may be restarted.
STALE_AFTER = timedelta(minutes=15)
SYNC_TASK = "licensing.directory.run_sync"
SKU_REFRESH_TASK = "licensing.directory.refresh_skus"


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
        # Pages written by an earlier delivery of this run were seen by that process, not this one.
        continued = sync.status == DirectorySync.Status.RUNNING and sync.pages > 0
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
        # Closed on the way out, whatever happens: the page being fetched ahead is waited for, not left running.
        pages = graph.user_page_links(select=USER_SELECT, page_size=PAGE_SIZE, start_link=resume_from or None)
        seen: set[int] = set()  # stored users listed by this run: their ids as integers, not rows
        with closing(pages) as listing:
            for users, next_link in listing:
                with tenant_context(organization):
                    counts = directory_user_upsert_from_graph(organization=organization, users=users, sync=sync,
                                                              skus=skus, seen=seen)
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
            sync.users_removed = 0 if continued else _mark_missing_users_removed(organization, sync, seen)
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


def _mark_missing_users_removed(organization, sync: DirectorySync, seen: set[int]) -> int:
    """Users the full listing no longer returned were deleted in the tenant; their seats are free.

    ``seen`` holds the stored users this process saw listed. Comparing ids in memory replaced marking
    every listed row in the database (an update of each unchanged user, most of a resync's time). A run
    continued after a lost worker did not see the earlier pages here, so it leaves removals to the next run.
    """
    # A user created through the portal while this sync was listing may be missing from pages fetched before
    # it existed: only users the portal knew when the sync started can have disappeared.
    known = (DirectoryUser.objects.for_org(organization).filter(removed_at__isnull=True)
             .filter(created_at__lte=sync.started_at).values_list("pk", flat=True))
    now = timezone.now()
    gone_ids = [pk for pk in known.iterator(chunk_size=2000) if pk.int not in seen]
    if not gone_ids:
        return 0
    DirectoryUser.objects.for_org(organization).filter(pk__in=gone_ids).update(removed_at=now, updated_at=now)
    LicenseAssignment.objects.for_org(organization).filter(
        user_id__in=gone_ids, state=LicenseAssignment.State.ASSIGNED
    ).update(state=LicenseAssignment.State.REMOVED, removed_at=now, updated_at=now)
    return len(gone_ids)
