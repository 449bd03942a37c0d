"""THE cross-tenant sweep: no route shows or touches another organisation's objects.

Two organisations each get one object of every TenantModel. A verified owner of A
then requests every org- or object-addressed route with B's slug or B's object ids,
through the dashboard and through the API (session and API key). Everything must
be 404. Every list page and endpoint must answer A with 200 (or the status tests/sweep.py
NOT_200 names), show A's own seeded rows (tests/sweep.py OWN_ROWS) and never mention any of
B's ids. New models and new routes are swept automatically; see tests/sweep.py and
tests/tenant_objects.py.
"""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from accounts.api_keys import api_key_create
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from accounts.tests.helpers import verified_client
from tests import sweep
from tests.tenant_objects import BuildError, TenantWorld, tenant_models

pytestmark = pytest.mark.django_db


class Tenants:
    def __init__(self):
        self.org_a = OrganizationFactory(slug="sweep-a")
        self.org_b = OrganizationFactory(slug="sweep-b")
        self.owner_a = UserFactory()
        MembershipFactory(user=self.owner_a, organization=self.org_a, role=Role.OWNER)
        world = TenantWorld()
        self.objects_a = world.build_all(self.org_a)
        self.objects_b = world.build_all(self.org_b)
        # UUIDs only: a small integer id (audit events) would match any digit on the page.
        self.b_ids = {str(o.pk) for o in self.objects_b.values() if len(str(o.pk)) >= 32} | {str(self.org_b.pk)}
        self.a_ids = {label: str(o.pk) for label, o in self.objects_a.items()}
        _, self.api_key_a = api_key_create(
            organization=self.org_a, name="sweep", role=Role.OWNER, expires_at=None, actor=self.owner_a
        )

    def session_client(self) -> Client:
        return verified_client(Client(), self.owner_a)

    def api_clients(self) -> dict[str, Client]:
        session = verified_client(Client(headers={"X-Organization": self.org_a.slug}), self.owner_a)
        key = Client(headers={"Authorization": f"Bearer {self.api_key_a}"})
        return {"session+X-Organization": session, "API key": key}


@pytest.fixture
def tenants():
    return Tenants()


def _status(client: Client, path: str, method: str = "get") -> tuple[int, bytes, str] | str:
    """(status, body, redirect location), or a description of the crash."""
    try:
        response = getattr(client, method)(path)
    except Exception as exc:  # a crash is a failure to hide the object, reported with the others
        return f"raised {type(exc).__name__}: {exc}"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body, response.get("Location", "")


def expect_not_found(client: Client, path: str, label: str, control_path: str) -> list[str]:
    """GET must be 404. A POST-only route (GET 405) is posted to instead, without form data: it must
    be 404, or answer exactly as it does for an id that exists nowhere, so existence cannot leak."""
    result = _status(client, path)
    method = "GET"
    if isinstance(result, tuple) and result[0] == 405:
        method = "POST"
        result = _status(client, path, "post")
        if isinstance(result, tuple) and result[0] != 404:
            control = _status(client, control_path, "post")
            if isinstance(control, tuple) and (control[0], control[2]) == (result[0], result[2]):
                return []
    if isinstance(result, str):
        return [f"{label} {method} {path}: {result}"]
    return [] if result[0] == 404 else [f"{label} {method} {path}: expected 404, got {result[0]}"]


def _shows(text: str, value: str) -> bool:
    return value in text or value.replace("-", "") in text


def expect_own_list(
    client: Client, route: sweep.Route, path: str, label: str, tenants: Tenants, own_rows: dict[str, set[str]]
) -> list[str]:
    """The caller's own organisation: the expected status (200 unless NOT_200 says otherwise), its own
    seeded rows on the list (OWN_ROWS), and none of the other organisation's ids."""
    result = _status(client, path)
    if isinstance(result, str):
        return [f"{label} GET {path}: {result}"]
    status, body, _ = result
    failures = []
    expected = sweep.NOT_200.get(route.pattern, 200)
    if status != expected:
        failures.append(f"{label} GET {path}: expected {expected} for the caller's own organisation, got {status}")
    text = body.decode("utf-8", "replace")
    missing = sorted(model for model in own_rows.get(route.pattern, ()) if not _shows(text, tenants.a_ids[model]))
    if missing:
        failures.append(f"{label} GET {path} ({status}) does not show the caller's own {missing}")
    leaked = sorted(i for i in tenants.b_ids if _shows(text, i))
    if leaked:
        failures.append(f"{label} GET {path} ({status}) shows the other organisation's ids {leaked}")
    return failures


def sweep_dashboard(
    tenants: Tenants, routes: list[sweep.Route], own_rows: dict[str, set[str]] = sweep.OWN_ROWS
) -> tuple[list[str], int]:
    client = tenants.session_client()
    failures, requests = [], 0
    for route in routes:
        if route.is_api or not (route.has_org or route.id_kwargs):
            continue
        # A route without an organisation in its path gives the same paths for either slug: requested once.
        slugs = [tenants.org_a.slug, tenants.org_b.slug] if route.id_kwargs and route.has_org else [tenants.org_b.slug]
        for slug in slugs:
            control = sweep.build_path(route, sweep.nowhere_values(route, slug))
            for values in sweep.value_sets(route, slug, tenants.objects_b):
                path = sweep.build_path(route, values)
                failures += expect_not_found(client, path, f"dashboard [{route.pattern}]", control)
                requests += 1
        if route.has_org and not route.id_kwargs:
            path = sweep.build_path(route, {**sweep.NON_TENANT_KWARGS, sweep.ORG_KWARG: tenants.org_a.slug})
            failures += expect_own_list(client, route, path, f"dashboard [{route.pattern}]", tenants, own_rows)
            requests += 1
    return failures, requests


def sweep_api(
    tenants: Tenants, routes: list[sweep.Route], own_rows: dict[str, set[str]] = sweep.OWN_ROWS
) -> tuple[list[str], int]:
    failures, requests = [], 0
    for label, client in tenants.api_clients().items():
        for route in routes:
            if not route.is_api:
                continue
            if route.id_kwargs:
                control = sweep.build_path(route, sweep.nowhere_values(route, tenants.org_a.slug))
                for values in sweep.value_sets(route, tenants.org_a.slug, tenants.objects_b):
                    path = sweep.build_path(route, values)
                    failures += expect_not_found(client, path, f"API {label} [{route.pattern}]", control)
                    requests += 1
            else:
                values = {**sweep.NON_TENANT_KWARGS, sweep.ORG_KWARG: tenants.org_a.slug}
                path = sweep.build_path(route, values)
                failures += expect_own_list(client, route, path, f"API {label} [{route.pattern}]", tenants, own_rows)
                requests += 1
    return failures, requests


def test_every_tenant_model_has_a_builder(db):
    world = TenantWorld()
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    try:
        built_a = world.build_all(org_a)
        built_b = world.build_all(org_b)
    except BuildError as exc:
        pytest.fail(f"Some tenant models cannot be built for the sweep:\n{exc}")
    assert {m._meta.label for m in tenant_models()} <= set(built_a)
    for label, obj in built_b.items():
        assert obj.organization_id == org_b.pk, label
        assert built_a[label].organization_id == org_a.pk, label


def test_every_route_kwarg_is_understood():
    unknown = [f"{r.pattern}: {r.unknown_kwargs()}" for r in sweep.all_swept_routes() if r.unknown_kwargs()]
    assert not unknown, (
        "URL kwargs the cross-tenant sweep does not know; name object ids pk/id/<model>_id, or add the kwarg "
        "to tests/sweep.py NON_TENANT_KWARGS if it names no tenant object:\n" + "\n".join(unknown)
    )


def test_every_tenant_list_endpoint_says_which_own_rows_it_shows():
    """An API list over a tenant model names the rows it must show (OWN_ROWS) or why it shows none."""
    tenant_labels = {m._meta.label for m in tenant_models()}
    undeclared = [
        route.pattern
        for route in sweep.swept_routes()
        if route.is_api and not route.id_kwargs and route.view_model() is not None
        and route.view_model()._meta.label in tenant_labels
        and route.pattern not in sweep.OWN_ROWS and route.pattern not in sweep.OWN_ROWS_EXEMPT
    ]
    assert not undeclared, "Add these list endpoints to tests/sweep.py OWN_ROWS (or OWN_ROWS_EXEMPT):\n" + "\n".join(
        undeclared
    )
    known = {route.pattern for route in sweep.swept_routes()}
    stale = sorted((set(sweep.OWN_ROWS) | set(sweep.NOT_200) | set(sweep.OWN_ROWS_EXEMPT)) - known)
    assert not stale, f"tests/sweep.py names routes that no longer exist: {stale}"


def test_tenant_manager_hides_b_objects_from_a_context(tenants):
    from core.tenancy import tenant_context

    tenant_labels = {m._meta.label for m in tenant_models()}
    with tenant_context(tenants.org_a):
        for label, obj in tenants.objects_b.items():
            if label not in tenant_labels:
                continue
            assert not type(obj).objects.filter(pk=obj.pk).exists(), label
            assert type(obj).objects.filter(pk=tenants.objects_a[label].pk).exists(), label


def test_dashboard_routes_hide_other_organisations(tenants):
    failures, requests = sweep_dashboard(tenants, sweep.swept_routes())
    assert requests > 0
    assert not failures, "Cross-tenant leaks:\n" + "\n".join(failures)


def test_api_routes_hide_other_organisations(tenants):
    routes = [r for r in sweep.swept_routes() if r.is_api]
    if not routes:
        pytest.skip("No /api/v1/ routes are registered yet.")
    failures, _ = sweep_api(tenants, routes)
    assert not failures, "Cross-tenant leaks:\n" + "\n".join(failures)


@override_settings(ROOT_URLCONF="tests.leaky_urls")
def test_the_sweep_catches_a_leaky_view(tenants):
    """The sweep itself is tested: deliberately leaky routes must be reported."""
    routes = sweep.swept_routes()
    own_rows = {
        "o/<slug:org_slug>/hiding-list/": {"accounts.ApiKey"},
        "o/<slug:org_slug>/leak-list/": {"accounts.ApiKey"},
    }
    dashboard_failures, _ = sweep_dashboard(tenants, routes, own_rows)
    api_failures, _ = sweep_api(tenants, routes, own_rows)
    assert any("leak/<uuid:pk>" in f and "expected 404, got 200" in f for f in dashboard_failures)
    hiding = "does not show the caller's own ['accounts.ApiKey']"
    assert any("hiding-list" in f and hiding in f for f in dashboard_failures)
    assert any("refusing-list" in f and "expected 200 for the caller's own organisation, got 404" in f
               for f in dashboard_failures)
    assert not any("leak-list" in f and "does not show" in f for f in dashboard_failures)
    assert any("leak-list" in f and "shows the other organisation's ids" in f for f in dashboard_failures)
    assert any("api/v1/leak/" in f and "API key" in f for f in api_failures)
    assert any("api/v1/leak/" in f and "session" in f for f in api_failures)


def test_many_candidate_ids_are_each_tried_in_every_kwarg():
    """Past MAX_COMBINATIONS the sweep does not try every pair, but every candidate still reaches every kwarg."""
    many = [f"id-{n}" for n in range(sweep.MAX_COMBINATIONS)]
    combos = list(sweep._one_position_at_a_time([many, many]))
    assert len(combos) == 2 * len(many) - 1 and len(set(combos)) == len(combos)
    for position in (0, 1):
        assert {combo[position] for combo in combos} == set(many)
