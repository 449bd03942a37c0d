"""The assignment tallies (decision 038) agree with a recount after any sequence of writes, whoever writes.

The triggers of migration 0013 keep them, so the property here is over the kinds of statement that change
assignments (ORM saves, ``bulk_create``, queryset ``update`` and ``delete``, cascades from a user or a pool,
raw SQL), in random orders and sizes; ``test_seat_invariant_properties.py`` checks the same agreement after
every step of the real services, and the licensing suite checks it at the end of every test (conftest).
"""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.tests.factories import OrganizationFactory
from core.tenancy import tenant_context
from licensing.models import AssignmentTally, DirectoryUser, LicenseAssignment, TenantSku
from licensing.selectors.tallies import recount_by_pool, tally_drift
from licensing.selectors.usage import assigned_seats_by_sku, seat_pools
from licensing.services.tallies import repair_tallies

from .core.factories import DirectoryUserFactory, TenantSkuFactory

pytestmark = pytest.mark.django_db

State = LicenseAssignment.State
STATES = list(State.values)


def test_every_state_has_a_tally_column():
    assert set(AssignmentTally.STATES) == set(State.values)
    assert {f.name for f in AssignmentTally._meta.get_fields()} >= set(State.values)


def _agree(org) -> None:
    assert tally_drift(org) == []


def _assign(org, user, pool, state=State.ASSIGNED) -> LicenseAssignment:
    return LicenseAssignment.objects.create(organization=org, user=user, sku=pool, state=state)


# One step each: (kind, a, b, state). a and b pick rows by position, so any sequence applies to any data.
STEP = st.tuples(
    st.sampled_from(["create", "bulk_create", "save_state", "save_pool", "update_state", "update_other",
                     "update_error_only", "delete_one", "delete_some", "delete_user", "delete_pool", "raw_sql"]),
    st.integers(0, 50), st.integers(0, 50), st.sampled_from(STATES),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=25))
def test_any_sequence_of_writes_keeps_the_tallies_equal_to_the_recount(steps):
    org, other = OrganizationFactory(), OrganizationFactory()
    with tenant_context(org):
        TenantSkuFactory.create_batch(3, organization=org)
        DirectoryUserFactory.create_batch(6, organization=org)
    with tenant_context(other):
        # Another organisation's pool with an assignment: never touched by org's writes.
        other_pool = TenantSkuFactory(organization=other)
        _assign(other, DirectoryUserFactory(organization=other), other_pool, State.FAILED)

    with tenant_context(org):
        for kind, a, b, state in steps:
            rows = list(LicenseAssignment.objects.order_by("created_at", "pk"))
            live_pools = list(TenantSku.objects.order_by("created_at", "pk"))
            live_users = list(DirectoryUser.objects.order_by("created_at", "pk"))
            taken = {(r.user_id, r.sku_id) for r in rows}
            free = [(u, p) for u in live_users for p in live_pools if (u.pk, p.pk) not in taken]
            if kind == "create" and free:
                user, pool = free[a % len(free)]
                _assign(org, user, pool, state)
            elif kind == "bulk_create" and free:
                LicenseAssignment.objects.bulk_create([
                    LicenseAssignment(organization=org, user=u, sku=p, state=STATES[(a + i) % len(STATES)])
                    for i, (u, p) in enumerate(free[: 1 + b % 5])])
            elif kind == "save_state" and rows:
                row = rows[a % len(rows)]
                row.state = state
                row.save()
            elif kind == "save_pool" and rows and live_pools:
                row = rows[a % len(rows)]
                pool = live_pools[b % len(live_pools)]
                if (row.user_id, pool.pk) not in taken:
                    row.sku = pool
                    row.state = state
                    row.save(update_fields=["sku", "state"])
            elif kind == "update_state" and rows:
                LicenseAssignment.objects.filter(pk__in=[r.pk for r in rows[a % len(rows):][: 1 + b % 7]]).update(
                    state=state, error_code="x")
            elif kind == "update_other":
                # An update of every row of the organisation whose rows partly keep their state.
                LicenseAssignment.objects.filter(state__in=STATES[: 1 + a % len(STATES)]).update(state=state)
            elif kind == "update_error_only":
                LicenseAssignment.objects.update(error_message=f"note {a}")
            elif kind == "delete_one" and rows:
                rows[a % len(rows)].delete()
            elif kind == "delete_some" and rows:
                LicenseAssignment.objects.filter(pk__in=[r.pk for r in rows[b % len(rows):][: 1 + a % 4]]).delete()
            elif kind == "delete_user" and live_users and a % 4 == 0:
                live_users[b % len(live_users)].delete()
            elif kind == "delete_pool" and live_pools and a % 5 == 0:
                live_pools[b % len(live_pools)].delete()
            elif kind == "raw_sql" and rows:
                with connection.cursor() as cursor:
                    cursor.execute("UPDATE licensing_licenseassignment SET state = %s WHERE id = %s",
                                   [state, LicenseAssignment._meta.pk.get_db_prep_value(
                                       rows[a % len(rows)].pk, connection)])
            _agree(org)
    with tenant_context(other):
        assert AssignmentTally.objects.get(sku=other_pool).counts() == {**dict.fromkeys(STATES, 0), "failed": 1}


def test_the_pages_read_the_tallies_per_pool():
    org = OrganizationFactory()
    with tenant_context(org):
        full, empty = TenantSkuFactory(organization=org, display_name="A"), TenantSkuFactory(
            organization=org, display_name="B")
        users = [DirectoryUserFactory(organization=org) for _ in range(5)]
        for user, state in zip(users, [State.ASSIGNED, State.ASSIGNED, State.PENDING, State.REMOVING, State.FAILED],
                               strict=True):
            _assign(org, user, full, state)
        _assign(org, users[0], empty, State.REMOVED)
        counts = {p.pk: (p.assigned_count, p.pending_count, p.failed_count) for p in seat_pools(org)}
        assert counts == {full.pk: (4, 2, 1), empty.pk: (0, 0, 0)}
        assert assigned_seats_by_sku(org) == {str(full.sku_id).lower(): 4}


def test_a_drifted_tally_is_reported_and_repaired():
    org = OrganizationFactory()
    with tenant_context(org):
        pool = TenantSkuFactory(organization=org)
        for user in [DirectoryUserFactory(organization=org) for _ in range(3)]:
            _assign(org, user, pool)
        AssignmentTally.objects.filter(sku=pool).update(assigned=7, failed=-1)
        drift = tally_drift(org)
        assert {(d.state, d.tallied, d.counted) for d in drift} == {("assigned", 7, 3), ("failed", -1, 0)}
        assert repair_tallies(org) == 2
        _agree(org)
        assert repair_tallies(org) == 0
        AssignmentTally.objects.filter(sku=pool).delete()
        assert repair_tallies(org) == 6 - 5  # only the assigned column was not zero
        assert AssignmentTally.objects.get(sku=pool).assigned == 3
        assert recount_by_pool(org)[pool.pk]["assigned"] == 3


def test_the_command_reports_drift_and_fixes_it_only_when_asked():
    org = OrganizationFactory()
    with tenant_context(org):
        pool = TenantSkuFactory(organization=org)
        _assign(org, DirectoryUserFactory(organization=org), pool)
        AssignmentTally.objects.filter(sku=pool).update(assigned=0)
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 organisation"):
        call_command("check_assignment_tallies", stdout=out)
    assert f"{org.pk}" in out.getvalue() and "assigned: tallied 0, counted 1" in out.getvalue()
    call_command("check_assignment_tallies", "--fix", stdout=io.StringIO())
    call_command("check_assignment_tallies", stdout=(out := io.StringIO()))
    assert "agree" in out.getvalue()
    with tenant_context(org):
        _agree(org)
