"""Seat safety under real concurrency (Postgres): 40 requests race for the last 10 seats."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from core.tenancy import tenant_context
from licensing.models import LicenseAssignment
from licensing.services.assignments import SeatsExhausted, license_assign, seats_free

from . import directory_helpers
from .directory_helpers import FABRIKAM, SYSTEM, premium, run_sync
from .test_assignments import unlicensed_users

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.emulator,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks under concurrency need PostgreSQL"),
]

# Fixtures shared by the directory tests (bound here so pytest finds them).
graph = directory_helpers.graph
linked_org = directory_helpers.linked_org


def test_forty_concurrent_requests_for_the_last_ten_seats(linked_org, emulator, graph):
    # Free five more seats in the tenant, so exactly ten are left.
    licensed = [u for u in graph.graph.iter_users(tenant_id=FABRIKAM) if u.assigned_sku_ids][:5]
    for user in licensed:
        graph.graph.assign_license(organization=linked_org, tenant_id=FABRIKAM, user_id=user.id,
                                   request_id=f"00000000-0000-4000-8000-00000000000{licensed.index(user)}",
                                   remove_sku_ids=user.assigned_sku_ids)
    run_sync(linked_org)
    pool = premium(linked_org)
    with tenant_context(linked_org):
        assert seats_free(linked_org, pool) == 10
    users = unlicensed_users(linked_org, pool, count=40)
    assert len(users) == 40
    emulator.clear_requests_log()
    barrier = threading.Barrier(len(users))
    outcomes: list[str] = []

    def request(user):
        try:
            barrier.wait()
            with tenant_context(linked_org):
                license_assign(organization=linked_org, user=user, sku=pool, actor=SYSTEM)
            outcomes.append("assigned")
        except SeatsExhausted:
            outcomes.append("exhausted")
        except Exception as exc:  # surfaced by the assertion below
            outcomes.append(f"error: {exc!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(outcomes)) == ["assigned", "exhausted"], outcomes
    assert outcomes.count("assigned") == 10
    with tenant_context(linked_org):
        assert LicenseAssignment.objects.for_org(linked_org).filter(
            sku=pool, state=LicenseAssignment.State.ASSIGNED
        ).count() == 25
        assert seats_free(linked_org, pool) == 0
    calls = emulator.requests_log(path="/graph/v1.0/users/*/assignLicense")
    assert len(calls) == 10
    assert all(c["status"] == 200 for c in calls)
