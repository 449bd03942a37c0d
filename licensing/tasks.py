"""Celery tasks for the licensing core: the outbox executor's sweeper, catalog sync, reconcile,
GDAP and renewal refresh. Thin: ids in, one service call.

The executor task itself lives with the outbox (``licensing.provisioning.execute``) so that
services can dispatch it without importing this module. Celery autodiscovery imports only
``tasks.py``, so the other licensing task modules and every module that registers an
operation handler are imported here, for the worker to know them.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import PARTNER_CUSTOMER_ID_INDEX, MicrosoftTenant, Organization
from core.crypto import blind_index
from core.tenancy import unscoped_no_tenant
from licensing.microsoft import errors as ms
from licensing.models import GdapRelationship, Subscription

from . import tasks_directory  # noqa: F401  (directory, usage, notifications: L2)
from .provisioning import execute_operation_task, operation_sweep  # noqa: F401
from .services import catalog as catalog_services
from .services import onboarding as onboarding_services
from .services import purchases  # noqa: F401  (registers order.checkout)
from .services import subscriptions as subscription_services
from .services import tallies as tally_services


@shared_task(name="licensing.tasks.sweep_operations", acks_late=True, reject_on_worker_lost=True)
def sweep_operations() -> int:
    return operation_sweep()


@shared_task(name="licensing.tasks.sync_catalog", acks_late=True, reject_on_worker_lost=True)
def sync_catalog() -> dict:
    result = catalog_services.catalog_sync(country=settings.LICENSING_CATALOG_COUNTRY)
    return {"products": result.products, "prices": result.prices}


@shared_task(name="licensing.tasks.reconcile_subscriptions", acks_late=True, reject_on_worker_lost=True)
def reconcile_subscriptions(*, organization_id: str) -> dict:
    organization = Organization.objects.get(pk=organization_id)
    return subscription_services.subscription_reconcile(organization=organization)


@shared_task(name=subscription_services.REFRESH_TASK, acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(ms.Throttled, ms.TransientFailure), retry_backoff=30, retry_jitter=True, max_retries=5)
def refresh_subscription(*, organization_id: str, subscription_id: str) -> None:
    organization = Organization.objects.get(pk=organization_id)
    subscription_services.subscription_refresh(organization=organization, subscription_id=subscription_id)


def _linked_org_ids() -> list:
    # A system sweep: it reads organisation ids only and fans out one task per organisation.
    # Linked ones: an unlinked tenant's customer id is empty (found through its blind index).
    no_customer = blind_index(PARTNER_CUSTOMER_ID_INDEX, "")
    with unscoped_no_tenant():
        return list(
            MicrosoftTenant.unscoped_objects.exclude(partner_customer_id_index=no_customer)
            .filter(relationship_status__in=[MicrosoftTenant.RelationshipStatus.ACTIVE,
                                             MicrosoftTenant.RelationshipStatus.EXPIRING])
            .values_list("organization_id", flat=True)
        )


@shared_task(name="licensing.tasks.reconcile_all", acks_late=True, reject_on_worker_lost=True)
def reconcile_all() -> int:
    org_ids = _linked_org_ids()
    for org_id in org_ids:
        reconcile_subscriptions.delay(organization_id=str(org_id))
    return len(org_ids)


@shared_task(name="licensing.tasks.refresh_renewals", acks_late=True, reject_on_worker_lost=True)
def refresh_renewals() -> int:
    """Reconcile organisations whose subscriptions reached their term end: renewed, expired or changed."""
    now = timezone.now()
    with unscoped_no_tenant():
        org_ids = list(
            Subscription.unscoped_objects.filter(
                Q(commitment_end__lt=now) & Q(status__in=[Subscription.Status.ACTIVE, Subscription.Status.SUSPENDED])
            ).values_list("organization_id", flat=True).distinct()
        )
    for org_id in org_ids:
        reconcile_subscriptions.delay(organization_id=str(org_id))
    return len(org_ids)


@shared_task(name="licensing.tasks.refresh_gdap", acks_late=True, reject_on_worker_lost=True)
def refresh_gdap(*, organization_id: str, relationship_id: str) -> str:
    relationship = GdapRelationship.objects.select_related("microsoft_tenant").get(pk=relationship_id)
    return onboarding_services.gdap_refresh(relationship=relationship).status


@shared_task(name="licensing.tasks.refresh_all_gdap", acks_late=True, reject_on_worker_lost=True)
def refresh_all_gdap() -> int:
    live = [GdapRelationship.Status.APPROVAL_PENDING, GdapRelationship.Status.ACTIVE,
            GdapRelationship.Status.EXPIRING]
    with unscoped_no_tenant():
        rows = list(
            GdapRelationship.unscoped_objects.filter(status__in=live)
            .exclude(ms_relationship_id=None)
            .values_list("pk", "organization_id")
        )
    for pk, org_id in rows:
        refresh_gdap.delay(organization_id=str(org_id), relationship_id=str(pk))
    return len(rows)


@shared_task(name="licensing.tasks.check_assignment_tallies", acks_late=True, reject_on_worker_lost=True)
def check_assignment_tallies() -> int:
    """Daily: recount every organisation's assignments against its tallies, repair and log any drift."""
    return len(tally_services.check_all_tallies(fix=True))
