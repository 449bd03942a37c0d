"""A bulk job that meets Microsoft's modelled throttling finishes with no failure and no duplicate.

The emulator throttles as Graph does (msemulator/throttling.py); the budget is made small so a
job of 45 users outruns it. The portal's client waits each Retry-After through an injected sleep
that moves the emulator's clock by that much, so nothing sleeps and the windows still slide.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from core.tenancy import tenant_context
from licensing.models import BulkJob, LicenseAssignment
from licensing.services import bulk as bulk_services
from licensing.services.assignments import seats_free

from . import directory_helpers
from .directory_helpers import FABRIKAM, SYSTEM, premium, run_sync
from .test_assignments import unlicensed_users

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

graph = directory_helpers.graph
linked_org = directory_helpers.linked_org

USERS = 45  # one operation: three $batch calls of 20, 20 and 5
WRITES_PER_WINDOW = 15
PREMIUM_OFFER = "CFQ7TTC0LCHC"


class EmulatorTimeSleep(list):
    """The client's sleep: record the delay and move the emulator clock by it instead of waiting."""

    def __init__(self, emulator):
        super().__init__()
        self.emulator = emulator

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if seconds > 0:
            self.emulator.advance_clock(seconds=seconds)


def test_a_bulk_job_under_the_modelled_write_quota_finishes_once_per_user(
    linked_org, emulator, make_client, monkeypatch
):
    emulator.update_settings(sandboxLimits=False)
    ms = make_client()
    seats = 20 + USERS  # 20 already assigned in the seeded tenant
    subscription = next(
        s
        for s in ms.partner_center.iter_subscriptions(customer_id=FABRIKAM)
        if s.offer_id.startswith(PREMIUM_OFFER) and s.status == "active"
    )
    ms.partner_center.set_quantity(
        customer_id=FABRIKAM, subscription_id=subscription.id, quantity=seats, request_id=str(uuid.uuid4())
    )
    run_sync(linked_org)
    pool = premium(linked_org)
    users = unlicensed_users(linked_org, pool, count=USERS)
    assert len(users) == USERS

    response = emulator.session.patch(
        emulator._url("/throttling"),
        timeout=10,
        json={"graph": {"writes": WRITES_PER_WINDOW, "writeWindowSeconds": 30}},
    )
    response.raise_for_status()
    sleep = EmulatorTimeSleep(emulator)
    throttled_client = make_client(sleep=sleep)
    monkeypatch.setattr("licensing.services.directory.graph.default_client", lambda: throttled_client)
    emulator.clear_requests_log()

    with tenant_context(linked_org):
        job = bulk_services.bulk_preview_selection(
            organization=linked_org, sku=pool, action=BulkJob.Action.ASSIGN, users=users, actor=SYSTEM
        )
    with tenant_context(linked_org):
        bulk_services.bulk_job_confirm(organization=linked_org, job=job, actor=SYSTEM)
    with tenant_context(linked_org):
        job = BulkJob.objects.for_org(linked_org).get(pk=job.pk)
        assigned = (
            LicenseAssignment.objects.for_org(linked_org)
            .filter(bulk_job=job, state=LicenseAssignment.State.ASSIGNED)
            .count()
        )
        free = seats_free(linked_org, pool)

    assert job.status == BulkJob.Status.COMPLETED, job.status
    assert (job.succeeded, job.failed, assigned, free) == (USERS, 0, USERS, 0)

    calls = emulator.requests_log(method="POST", path="/graph/v1.0/users/*/assignLicense")
    statuses = Counter(call["status"] for call in calls)
    assert statuses[429] >= 20 - WRITES_PER_WINDOW  # the first $batch alone outran the budget
    carried_out = Counter(call["path"] for call in calls if call["status"] == 200)
    assert len(carried_out) == USERS and set(carried_out.values()) == {1}  # each user once, none twice
    assert set(statuses) == {200, 429}
    # The client waited what Graph asked, never a whole window for nothing and never not at all.
    waits = [s for s in sleep if s > 0]
    assert waits and all(1 <= s <= 30 for s in waits)
    skus = {s.sku_id: s for s in ms.graph.subscribed_skus(tenant_id=FABRIKAM)}
    assert skus[str(pool.sku_id)].consumed == seats
