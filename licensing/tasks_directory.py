"""Celery tasks for directory sync, usage snapshots and notifications. Thin: ids in, one service call.

Tasks that act on one organisation take ``organization_id``, so the base task runs them inside
that tenant's context. The periodic fan-outs are system sweeps: they read organisation ids only
and enqueue one task per organisation.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from accounts.models import MicrosoftTenant, Organization
from accounts.selectors import organizations_across_tenants
from core.audit import Actor
from core.tenancy import tenant_context, unscoped_no_tenant
from licensing.microsoft import errors as ms
from licensing.models import DirectorySync, ProvisioningOperation

from .services import directory as directory_services
from .services import notifications as notification_services
from .services import reassign  # noqa: F401 - registers the license.reassign handler
from .services import usage as usage_services
from .services.directory import offboard as _offboard  # noqa: F401  (registers directory.user_offboard)
from .services.directory import passwords as password_services
from .services.directory import users as directory_user_services


@shared_task(
    bind=True, name=directory_services.SYNC_TASK, acks_late=True, reject_on_worker_lost=True,
    autoretry_for=(ms.Throttled, ms.TransientFailure), retry_backoff=30, retry_jitter=True, max_retries=5,
)
def run_directory_sync(self, *, sync_id: str, org_id: str) -> None:
    # org_id, not organization_id: the sync commits page by page in its own tenant transactions
    # instead of running inside the single one the base task would wrap around it.
    with tenant_context(org_id):  # the organisation has row-level security too
        organization = Organization.objects.get(pk=org_id)
    directory_services.directory_sync_run(organization=organization, sync_id=sync_id)


@shared_task(
    name=directory_services.SKU_REFRESH_TASK, acks_late=True, reject_on_worker_lost=True,
    autoretry_for=(ms.Throttled, ms.TransientFailure), retry_backoff=30, retry_jitter=True, max_retries=5,
)
def refresh_tenant_skus(*, organization_id: str) -> int:
    organization = Organization.objects.get(pk=organization_id)
    return directory_services.tenant_skus_refresh(organization=organization)


@shared_task(name="licensing.directory.sync_all")
def sync_all_directories() -> int:
    """Periodic: queue a sync for every organisation with a linked tenant."""
    with unscoped_no_tenant():
        org_ids = list(
            MicrosoftTenant.unscoped_objects.filter(tenant_id__isnull=False).values_list("organization_id", flat=True)
        )
    for org_id in org_ids:
        request_periodic_sync.delay(organization_id=str(org_id))
    return len(org_ids)


@shared_task(name="licensing.directory.expire_temporary_passwords")
def expire_temporary_passwords() -> int:
    """Periodic: erase temporary passwords nobody revealed in time, one task per organisation holding one."""
    with unscoped_no_tenant():
        org_ids = set(
            ProvisioningOperation.unscoped_objects.filter(
                kind__in=directory_user_services.PASSWORD_KINDS, checkpoint__password_waiting=True
            ).values_list("organization_id", flat=True)
        )
    for org_id in sorted(org_ids, key=str):
        expire_organization_passwords.delay(organization_id=str(org_id))
    return len(org_ids)


@shared_task(name="licensing.directory.expire_organization_passwords")
def expire_organization_passwords(*, organization_id: str) -> int:
    organization = Organization.objects.get(pk=organization_id)
    return password_services.temporary_passwords_expire(organization=organization)


@shared_task(name="licensing.directory.request_periodic_sync")
def request_periodic_sync(*, organization_id: str) -> str:
    organization = Organization.objects.get(pk=organization_id)
    sync = directory_services.directory_sync_request(
        organization=organization, actor=Actor.system("directory-sync"), trigger=DirectorySync.Trigger.PERIODIC
    )
    return str(sync.pk)


@shared_task(name="licensing.usage.snapshot_all")
def snapshot_all_usage() -> int:
    """Periodic (daily): one snapshot task per active organisation."""
    return _fan_out_to_active_organizations(take_usage_snapshot)


@shared_task(name="licensing.usage.snapshot")
def take_usage_snapshot(*, organization_id: str) -> int:
    organization = Organization.objects.get(pk=organization_id)
    return usage_services.usage_snapshot_take(organization=organization, day=timezone.now().date())


@shared_task(name="licensing.notifications.reminders_all")
def send_all_reminders() -> int:
    """Periodic (daily): renewal, window and expiry reminders for every active organisation."""
    return _fan_out_to_active_organizations(send_reminders)


def _fan_out_to_active_organizations(task) -> int:
    """Enqueue ``task`` once per active organisation; each runs inside its own tenant context."""
    org_ids = [organization.pk for organization in organizations_across_tenants(active_only=True)]
    for org_id in org_ids:
        task.delay(organization_id=str(org_id))
    return len(org_ids)


@shared_task(name="licensing.notifications.reminders")
def send_reminders(*, organization_id: str) -> int:
    organization = Organization.objects.get(pk=organization_id)
    return notification_services.reminders_run(organization=organization)


@shared_task(name=notification_services.EMAIL_TASK, acks_late=True, reject_on_worker_lost=True)
def send_notification_emails(*, notification_ids: list[str], organization_id: str) -> int:
    organization = Organization.objects.get(pk=organization_id)
    return notification_services.notification_email(organization=organization, notification_ids=notification_ids)
