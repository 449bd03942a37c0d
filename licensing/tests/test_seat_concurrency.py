"""The seat invariant under real concurrency (Postgres row locks): reductions and assignments on the same
SKU race from separate threads and connections, and the pool never ends over-assigned, neither when they
are queued nor once Microsoft has carried them out."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from core.audit import Actor
from core.tenancy import tenant_context
from licensing.models import LicenseAssignment, ProvisioningOperation, SeatBatch, Subscription, TenantSku
from licensing.nce import RuleViolation
from licensing.provisioning import operation_execute
from licensing.selectors.seats import seats_held, seats_purchased
from licensing.services import assignments as assignment_services
from licensing.services import subscriptions as subscription_services
from licensing.services.assignments import SeatsExhausted

from .core.factories import DirectoryUserFactory, SkuFactory, SubscriptionFactory, TenantSkuFactory
from .test_seat_invariant_properties import FakeClient, FakeGraph

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks under concurrency need PostgreSQL"),
]

ACTOR = Actor.system("concurrency-test")


@pytest.fixture
def fakes(monkeypatch):
    # Operations stay queued while the threads race; the test carries them out afterwards.
    monkeypatch.setattr("licensing.provisioning.operation_dispatch", lambda **kwargs: None)
    monkeypatch.setattr("licensing.services.assignments.graph_for", lambda organization: FakeGraph())
    monkeypatch.setattr("licensing.services.subscriptions.changes.default_client", lambda: FakeClient())
    monkeypatch.setattr("licensing.services.subscriptions.changes._customer_id", lambda organization_id: "cust")


def race(calls) -> list[str]:
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []

    def run(call):
        try:
            barrier.wait()
            call()
            outcomes.append("done")
        except (SeatsExhausted, RuleViolation) as exc:
            outcomes.append(getattr(exc, "code", "seats_exhausted"))
        except Exception as exc:  # surfaced by the assertion on outcomes
            outcomes.append(f"error: {exc!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_reductions_and_assignments_never_end_over_assigned(fakes):
    sku = SkuFactory(minimum_quantity=1)
    pool = TenantSkuFactory(sku_id=sku.provisioning_id, purchased=20)
    org = pool.organization
    now = timezone.now()
    with tenant_context(org):
        subscriptions = []
        for _ in range(4):
            sub = SubscriptionFactory(organization=org, sku=sku, quantity=5, start_date=now)
            SeatBatch.objects.create(organization=org, subscription=sub, source=SeatBatch.Source.PURCHASE,
                                     quantity=5, added_at=now, refundable_until=now + timedelta(days=7))
            subscriptions.append(sub)
        holders = [DirectoryUserFactory(organization=org) for _ in range(10)]
        for user in holders:
            LicenseAssignment.objects.create(organization=org, user=user, sku=pool,
                                             state=LicenseAssignment.State.ASSIGNED)
        newcomers = [DirectoryUserFactory(organization=org) for _ in range(12)]
    # 10 held of 20: each reduction (5 -> 2) removes 3 seats; together they would leave 8 < 10 held.

    def assign(user):
        def call():
            with tenant_context(org):
                assignment_services.license_assign(organization=org, user=user, sku=pool, actor=ACTOR)
        return call

    def reduce(subscription):
        def call():
            with tenant_context(org):
                subscription_services.subscription_change_quantity(subscription=subscription, actor=ACTOR,
                                                                   quantity=2)
        return call

    outcomes = race([*(assign(u) for u in newcomers), *(reduce(s) for s in subscriptions)])
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    assert "done" in outcomes and ({"seats_exhausted", "seats_assigned"} & set(outcomes)), outcomes

    with tenant_context(org):
        fresh = TenantSku.objects.get(pk=pool.pk)
        queued_held, queued_purchased = seats_held(org, fresh), seats_purchased(org, fresh)
    assert queued_held <= queued_purchased, (queued_held, queued_purchased)

    # Microsoft carries out everything that was queued: still within the seats.
    with tenant_context(org):
        pending = list(ProvisioningOperation.objects.for_org(org).order_by("created_at").values_list("pk", flat=True))
    for pk in pending:
        operation_execute(operation_id=pk, org_id=org.pk)
    with tenant_context(org):
        statuses = set(ProvisioningOperation.objects.for_org(org).values_list("status", flat=True))
        final_seats = sum(Subscription.objects.filter(pk__in=[s.pk for s in subscriptions])
                          .values_list("quantity", flat=True))
        final_held = seats_held(org, TenantSku.objects.get(pk=pool.pk))
    assert statuses == {ProvisioningOperation.Status.SUCCEEDED}, statuses
    assert final_held <= final_seats, (final_held, final_seats)
    assert final_held == queued_held and final_seats == queued_purchased
