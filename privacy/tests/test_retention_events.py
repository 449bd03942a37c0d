"""Event-started retention: tenant data goes once the tenant is unlinked, order and billing data seven years
after the last subscription ended, measured from that event and not from the row's date; nothing of a
customer with a live subscription goes, a legal hold keeps everything, a second run removes nothing."""

from __future__ import annotations

import datetime
import uuid

import pytest
import time_machine

from accounts.models import MicrosoftTenant
from accounts.tests.factories import OrganizationFactory
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, ProvisioningOperation, Subscription
from licensing.tests.core.factories import DirectoryUserFactory, SubscriptionFactory
from privacy.models import LegalHold
from privacy.services.retention import organization_events, retention_purge

pytestmark = pytest.mark.django_db
NOW = datetime.datetime(2026, 12, 7, 2, 0, tzinfo=datetime.UTC)


def _customer(*, ended_days_ago=None, unlinked_days_ago=None):
    """An organisation with a directory user and an old provisioning operation; its last subscription ended
    and its tenant was unlinked that many days ago (None: still live / still linked)."""
    org = OrganizationFactory()
    with tenant_context(org):
        subscription = SubscriptionFactory(organization=org)
        if ended_days_ago is not None:
            Subscription.objects.for_org(org).filter(pk=subscription.pk).update(
                status=Subscription.Status.DELETED, updated_at=NOW - datetime.timedelta(days=ended_days_ago))
        tenant = MicrosoftTenant.objects.create(organization=org, tenant_id=uuid.uuid4())
        if unlinked_days_ago is not None:
            MicrosoftTenant.objects.for_org(org).filter(pk=tenant.pk).update(
                tenant_id=None, updated_at=NOW - datetime.timedelta(days=unlinked_days_ago))
        DirectoryUserFactory(organization=org)
        operation = ProvisioningOperation.objects.create(organization=org, kind="customer.create",
                                                         ms_request_id=uuid.uuid4())
        # The row itself is recent: only the event decides.
        ProvisioningOperation.objects.for_org(org).filter(pk=operation.pk).update(
            created_at=NOW - datetime.timedelta(days=100))
    return org


def _left(org, model):
    with tenant_context(org):
        return model.objects.for_org(org).count()


@time_machine.travel(NOW, tick=False)
def test_event_started_classes_are_measured_from_the_event():
    live = _customer()
    unlinked = _customer(unlinked_days_ago=1)
    ended_recently = _customer(ended_days_ago=6 * 365, unlinked_days_ago=6 * 365)
    ended_long_ago = _customer(ended_days_ago=7 * 365 + 1, unlinked_days_ago=7 * 365 + 1)
    held = _customer(ended_days_ago=8 * 365, unlinked_days_ago=8 * 365)
    LegalHold.objects.create(organization=held, reason="Tax audit")
    assert organization_events(live) == {}

    dry = retention_purge(dry_run=True)
    assert dry.counts["licensing.directoryuser"] == 3 and dry.counts["licensing.provisioningoperation"] == 1
    assert _left(unlinked, DirectoryUser) == 1  # a dry run deletes nothing

    run = retention_purge()
    assert run.counts == dry.counts
    # Unlinked: the directory goes at once; the order history stays (the subscriptions' clock has not started).
    assert (_left(unlinked, DirectoryUser), _left(unlinked, ProvisioningOperation)) == (0, 1)
    # Six years after the end: the directory has gone, the legal period still runs.
    assert (_left(ended_recently, DirectoryUser), _left(ended_recently, ProvisioningOperation)) == (0, 1)
    # Seven years and a day: the legal period is over.
    assert (_left(ended_long_ago, DirectoryUser), _left(ended_long_ago, ProvisioningOperation)) == (0, 0)
    # Live customer and a customer under a legal hold: nothing goes.
    for org in (live, held):
        assert (_left(org, DirectoryUser), _left(org, ProvisioningOperation)) == (1, 1)
    assert not retention_purge().counts  # a second run removes nothing


@time_machine.travel(NOW, tick=False)
def test_a_period_is_configurable_per_class(settings):
    settings.PRIVACY_RETENTION_DAYS = {"active_plus_legal": 10 * 365}
    org = _customer(ended_days_ago=8 * 365, unlinked_days_ago=8 * 365)
    retention_purge()
    assert _left(org, ProvisioningOperation) == 1
