"""Who counts as inactive, and that the answer is read off the activity index even under row-level security."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.tests.factories import OrganizationFactory
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, LicenseAssignment, TenantSku, inactive_since
from licensing.selectors import usage as usage_selectors

SKU = uuid.UUID("cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46")


def directory_user(org, name, *, created_days_ago, signed_in_days_ago=None, removed=False):
    now = timezone.now()
    user = DirectoryUser(organization=org, graph_id=uuid.uuid4(), user_principal_name=f"{name}@x.example",
                         display_name=name,
                         last_sign_in_at=None if signed_in_days_ago is None else now - timedelta(
                             days=signed_in_days_ago),
                         removed_at=now if removed else None)
    user.save()
    DirectoryUser.objects.for_org(org).filter(pk=user.pk).update(created_at=now - timedelta(days=created_days_ago))
    return user


@pytest.mark.django_db
def test_inactive_means_no_sign_in_since_the_cutoff_and_a_user_who_never_signed_in_counts_once_that_old():
    org = OrganizationFactory()
    with tenant_context(org):
        directory_user(org, "stale", created_days_ago=400, signed_in_days_ago=40)
        directory_user(org, "recent", created_days_ago=400, signed_in_days_ago=2)
        directory_user(org, "never-old", created_days_ago=40)
        directory_user(org, "never-new", created_days_ago=2)
        # An old account that signed in lately is active, whatever its age.
        directory_user(org, "old-but-back", created_days_ago=900, signed_in_days_ago=0)
        cutoff = timezone.now() - timedelta(days=30)
        names = {user.display_name for user in DirectoryUser.objects.for_org(org).filter(inactive_since(cutoff))}
    assert names == {"stale", "never-old"}


@pytest.mark.django_db
def test_the_reclaimable_licenses_are_the_assigned_seats_of_inactive_current_users():
    org = OrganizationFactory()
    with tenant_context(org):
        pool = TenantSku.objects.create(organization=org, sku_id=SKU, sku_part_number="SPB", display_name="Premium",
                                        purchased=10)
        for user in (directory_user(org, "stale", created_days_ago=400, signed_in_days_ago=40),
                     directory_user(org, "recent", created_days_ago=400, signed_in_days_ago=2),
                     directory_user(org, "gone", created_days_ago=400, signed_in_days_ago=40, removed=True)):
            LicenseAssignment.objects.create(organization=org, user=user, sku=pool, state="assigned")
        pending = directory_user(org, "pending", created_days_ago=400, signed_in_days_ago=40)
        LicenseAssignment.objects.create(organization=org, user=pending, sku=pool, state="pending")
        reclaimable = [a.user.display_name for a in usage_selectors.inactive_assignments(org)]
    assert reclaimable == ["stale"]


@pytest.mark.django_db(transaction=True)
def test_the_inactive_users_are_found_through_the_activity_index_as_the_role_row_level_security_binds(settings):
    # PostgreSQL uses a condition in an index scan under a row-level security policy only if it cannot leak
    # hidden rows. It does not know that of COALESCE, so an index on COALESCE(last sign-in, created) sat unused
    # and every overview read the whole directory. With sequential scans priced out, the plan must still put
    # the activity condition in the index scan's own condition, not in a filter after it.
    from tests.test_rls import ProductionRoles

    if connection.vendor != "postgresql":
        pytest.skip("row-level security needs PostgreSQL")
    org = OrganizationFactory()
    with tenant_context(org):
        # Few inactive among many, as in a real directory, with the planner's statistics taken.
        for n in range(300):
            directory_user(org, f"u{n}", created_days_ago=400, signed_in_days_ago=40 if n % 50 == 0 else 2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE licensing_directoryuser")
    cutoff = timezone.now() - timedelta(days=30)
    with ProductionRoles(settings), tenant_context(org):
        sql, params = DirectoryUser.objects.for_org(org).filter(inactive_since(cutoff)).query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] != settings.DATABASES["default"].get("USER")
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            (document,) = cursor.fetchone()
        inactive_count = DirectoryUser.objects.filter(inactive_since(cutoff)).count()
    plan = document if isinstance(document, list) else json.loads(document)

    def index_conditions(node):
        if node.get("Index Name") == "directory_user_activity_idx":
            yield node.get("Index Cond", "")
        for child in node.get("Plans", []):
            yield from index_conditions(child)

    conditions = list(index_conditions(plan[0]["Plan"]))
    assert conditions and all("last_sign_in_at" in condition for condition in conditions), plan
    assert inactive_count == 6
