"""The licenses page and the directory users page for an organisation with 10,000 users and 20 SKUs.

Served in-process by the Django test client through the full middleware stack, by a verified
owner session, like the bare baseline view. Query counts are taken at 100 and at 10,000 directory
users (each user holds one or two of the 20 licenses): they must not grow with the directory.
"""

from __future__ import annotations

import time
import uuid

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from benchmarks.emulator import scaled
from benchmarks.harness import Context, Result

SMALL, LARGE = 100, 10_000
SKUS = 20
REQUESTS = 40
REPEATS = 3


def _seat_pools(organization) -> list:
    from licensing.models import TenantSku

    pools = [
        TenantSku(organization=organization, sku_id=uuid.uuid4(), sku_part_number=f"BENCH_SKU_{n:02}",
                  display_name=f"Bench license {n:02}", purchased=LARGE, consumed_in_tenant=0,
                  service_plans=[{"id": str(uuid.uuid4()), "name": f"PLAN_{n}"}], last_synced_at=timezone.now())
        for n in range(SKUS)
    ]
    return TenantSku.objects.bulk_create(pools)


def _add_users(organization, pools: list, start: int, stop: int) -> None:
    """Directory users ``start``..``stop`` (encrypted fields and blind indexes as the sync writes them),
    each holding one or two licenses."""
    from core.tenancy import tenant_context
    from licensing.models import DirectoryUser, LicenseAssignment

    now = timezone.now()
    with tenant_context(organization):
        for chunk in range(start, stop, 1000):
            users = [
                DirectoryUser(
                    organization=organization, graph_id=uuid.uuid4(), display_name=f"Bench User {n}",
                    user_principal_name=f"user{n}@bench.onmicrosoft.com", mail=f"user{n}@bench.example",
                    job_title="Analyst", usage_location="US", has_usage_location=True, last_sign_in_at=now,
                    source_hash=f"{n:064}",
                )
                for n in range(chunk, min(chunk + 1000, stop))
            ]
            DirectoryUser.objects.bulk_create(users)
            assignments = []
            for n, user in enumerate(users, start=chunk):
                held = {pools[n % SKUS].pk: pools[n % SKUS], pools[(n * 7) % SKUS].pk: pools[(n * 7) % SKUS]}
                for pool in held.values():
                    assignments.append(LicenseAssignment(
                        organization=organization, user=user, sku=pool, state=LicenseAssignment.State.ASSIGNED,
                        source=LicenseAssignment.Source.TENANT, assigned_at=now,
                    ))
            LicenseAssignment.objects.bulk_create(assignments)


def _queries(client: Client, path: str) -> int:
    client.get(path)  # the first visit may write the session: not the page's cost
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return len(captured)


def _ms_per_request(client: Client, path: str, requests: int) -> float:
    client.get(path)
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(requests):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
        best = min(best, (time.perf_counter() - start) / requests)
    return best * 1e3


def run(ctx: Context) -> list[Result]:
    from accounts.roles import Role
    from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
    from accounts.tests.helpers import verified_client

    large = scaled(LARGE, minimum=2 * SMALL)
    requests = scaled(REQUESTS, minimum=5)
    organization = OrganizationFactory(slug="bench-licenses")
    owner = UserFactory()
    MembershipFactory(user=owner, organization=organization, role=Role.OWNER)
    client = verified_client(Client(), owner)
    pools = _seat_pools(organization)
    slug = {"org_slug": organization.slug}
    users_url = reverse("licensing:directory_users", kwargs=slug)
    pages = [
        ("licenses page", reverse("licensing:licenses", kwargs=slug)),
        ("directory users page", users_url),
        ("directory users, unlicensed filter", f"{users_url}?status=unlicensed"),
        ("directory users, one license, last page", f"{users_url}?sku={pools[3].pk}&page=last"),
    ]

    _add_users(organization, pools, 0, SMALL)
    small_counts = {name: _queries(client, path) for name, path in pages}
    started = time.perf_counter()
    _add_users(organization, pools, SMALL, large)
    ctx.say(f"created {large - SMALL:,} directory users with {SKUS} SKUs in {time.perf_counter() - started:.1f} s")
    large_counts = {name: _queries(client, path) for name, path in pages}
    grown = [name for name, _ in pages if large_counts[name] != small_counts[name]]
    for name, _ in pages:
        ctx.say(f"{name}: {small_counts[name]} queries at {SMALL} users, {large_counts[name]} at {large:,} users")
    if grown:
        ctx.say(f"QUERY COUNT GROWS WITH THE DIRECTORY: {', '.join(grown)}")

    bare = _ms_per_request(client, "/bench/bare/", requests)
    results = []
    for name, path in pages:
        figure = _ms_per_request(client, path, requests)
        results.append(Result(
            f"{name} at {large:,} users (ms)", figure, bare, "ms",
            note=f"{large_counts[name]} queries ({small_counts[name]} at {SMALL} users); baseline: the bare view",
        ))
    results.append(Result(
        f"query count, {large:,} vs {SMALL} users (worst page)", float(max(large_counts.values())),
        float(max(small_counts.values())), "queries", goal=1.0,
        note="the largest query count of the pages above; must not grow with the directory",
    ))
    return results
