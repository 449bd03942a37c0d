"""Requests per second for signed-in pages and API lists against a bare Django view, plus query counts.

Everything is served in-process by the Django test client through the full middleware
stack, by the same verified session, so the ratio is the page's own cost.
"""

from __future__ import annotations

import time
import uuid

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve

from benchmarks.harness import Context, Result

REQUESTS = 200
SMALL, LARGE = 10, 10_000
API_LIST_CANDIDATES = ("/api/v1/api-keys/", "/api/v1/audit-events/", "/api/v1/subscriptions/")


def _rps(client: Client, path: str, **headers) -> float:
    client.get(path, headers=headers)  # warm-up
    start = time.perf_counter()
    for _ in range(REQUESTS):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code)
    return REQUESTS / (time.perf_counter() - start)


def _queries(client: Client, path: str, **headers) -> int:
    client.get(path, headers=headers)  # the first visit also writes the session: not the page's cost
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code)
    return len(captured)


def _add_rows(org, count: int) -> None:
    from accounts.models import ApiKey

    ApiKey.unscoped_objects.bulk_create(
        [
            ApiKey(organization=org, name=f"bench {i}", prefix=uuid.uuid4().hex[:16], secret_hash="x", role="viewer")
            for i in range(count)
        ],
        batch_size=1000,
    )


def _routable(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def run(ctx: Context) -> list[Result]:
    from accounts.roles import Role
    from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
    from accounts.tests.helpers import verified_client

    org = OrganizationFactory(slug="bench-pages")
    user = UserFactory()
    MembershipFactory(user=user, organization=org, role=Role.OWNER)
    client = verified_client(Client(), user)
    api_headers = {"X-Organization": org.slug}

    pages = [("overview page", f"/o/{org.slug}/", {})]
    api_path = next((p for p in API_LIST_CANDIDATES if _routable(p)), None)
    if api_path:
        pages.append((f"API list {api_path}", api_path, api_headers))
    else:
        ctx.say(f"skipped the API list benchmark: none of {', '.join(API_LIST_CANDIDATES)} is routed yet")

    _add_rows(org, SMALL)
    small = {name: _queries(client, path, **headers) for name, path, headers in pages}
    results = []
    bare = _rps(client, "/bench/bare/")
    for name, path, headers in pages:
        rps = _rps(client, path, **headers)
        results.append(Result(f"{name} (req/s)", rps, bare, "req/s", higher_is_better=True, note="baseline: bare view"))
    _add_rows(org, LARGE - SMALL)
    for name, path, headers in pages:
        large = _queries(client, path, **headers)
        ctx.say(f"{name}: {small[name]} queries with {SMALL} rows, {large} with {LARGE} rows")
    return results
