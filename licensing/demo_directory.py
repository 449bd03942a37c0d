"""Demo seed for the directory half: a synced directory, licenses assigned, 90 days of usage history.

Runs after ``licensing.demo.seed_licensing_demo`` (tenant linked, subscriptions bought), against
the emulator's seeded tenant of a few hundred users. History before today is synthesised (the
demo organisation did not exist 90 days ago) so the usage charts have a real shape; today's
snapshot is taken from the real seat counts.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from core.audit import Actor
from core.tenancy import tenant_context

from .demo import run_pending_operations
from .models import BulkJob, DirectorySync, DirectoryUser, LicenseAssignment, UsageSnapshot
from .selectors import usage as selectors_usage
from .services import bulk as bulk_services
from .services import directory as directory_services
from .services import notifications as notification_services
from .services import usage as usage_services

HISTORY_DAYS = 90


def seed_directory_demo(*, organization, actor) -> dict:
    system = Actor.system("demo")
    with tenant_context(organization):
        sync = DirectorySync.objects.for_org(organization).create(
            organization=organization, trigger=DirectorySync.Trigger.DEMO, requested_by=actor
        )
    sync = directory_services.directory_sync_run(organization=organization, sync_id=sync.pk)
    assigned = _assign_free_seats(organization, system, actor)
    run_pending_operations(organization)
    snapshots = _usage_history(organization)
    with tenant_context(organization):
        reminders = notification_services.reminders_run(organization=organization)
    return {"users": sync.users_seen, "assigned": assigned, "snapshots": snapshots, "notifications": reminders}


def _assign_free_seats(organization, system: Actor, actor) -> int:
    """Fill most of each license's free seats with users who can hold one, leaving a few spare to show waste."""
    total = 0
    with tenant_context(organization):
        rows = selectors_usage.pool_rows(organization)
        for row in rows:
            wanted = max(0, row.available - max(2, row.purchased // 5))
            if not wanted or not row.sku.applies_to_users:
                continue
            holders = LicenseAssignment.objects.for_org(organization).filter(
                sku=row.sku, state__in=LicenseAssignment.SEAT_HOLDING
            ).values_list("user_id", flat=True)
            users = list(
                DirectoryUser.objects.for_org(organization)
                .filter(has_usage_location=True, account_enabled=True, removed_at__isnull=True)
                .exclude(pk__in=holders)[:wanted]
            )
            job = bulk_services.bulk_preview_selection(
                organization=organization, sku=row.sku, action=BulkJob.Action.ASSIGN, users=users, actor=system,
                created_by=actor,
            )
            bulk_services.bulk_job_confirm(organization=organization, job=job, actor=system, requested_by=actor)
            total += job.change_rows
    return total


def _usage_history(organization) -> int:
    """Snapshots for the last 90 days: assignments ramping up to today's count, seats stepping up at purchases."""
    today = timezone.now().date()
    created = 0
    with tenant_context(organization):
        usage_services.usage_snapshot_take(organization=organization, day=today)
        prices = selectors_usage.monthly_unit_prices(organization)
        for row in selectors_usage.pool_rows(organization):
            price, currency = prices.get(str(row.sku.sku_id).lower(), (None, ""))
            history = []
            for back in range(1, HISTORY_DAYS):
                day = today - timedelta(days=back)
                # A gentle ramp with a weekly wobble: deterministic, so every demo looks the same.
                assigned = max(0, round(row.assigned * (1 - back / (HISTORY_DAYS * 1.6))) - (back % 7 == 0))
                purchased = row.purchased if back < 60 else max(assigned, round(row.purchased * 0.8))
                history.append(UsageSnapshot(
                    organization=organization, sku=row.sku, day=day, purchased=purchased, assigned=assigned,
                    available=purchased - assigned, unit_price_monthly=price, currency=currency,
                ))
            UsageSnapshot.objects.bulk_create(history, ignore_conflicts=True)
            created += len(history) + 1
    return created
