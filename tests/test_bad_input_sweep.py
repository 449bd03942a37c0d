"""THE bad-input sweep: no search box, filter, form or API field answers 500, in the dashboard,
the pages before sign-in, the API and the staff admin.

Every route comes from the URL configuration (tests/sweep.py walks it) and every input from
the route itself (tests/bad_input.py reads the rendered forms and the OpenAPI schema), so a
page added later is swept without anyone listing it. Each input gets a NUL byte (PostgreSQL
text cannot hold one), a 10 KB string, right-to-left text with stacked combining marks, a JSON text
nested 2,000 levels deep and a number too large for any column; the answer may be a clear message
or a result, never a 5xx or an exception. Wrong JSON types in API bodies (objects, lists, numbers,
null where a string belongs) come from Schemathesis' negative examples (tests/security/test_api_fuzz.py).
Every API write endpoint also gets a JSON body nested 5,000 levels deep and must refuse it with a 400 in the
one error shape. Run it on Postgres too (DATABASE_URL): NUL bytes matter there.
"""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.api_keys import api_key_create
from accounts.models import StaffRole
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory, StaffGrantFactory, UserFactory
from accounts.tests.helpers import verified_client
from tests import bad_input, sweep
from tests.tenant_objects import TenantWorld

pytestmark = pytest.mark.django_db

# The staff admin has its own sweep below; the schema endpoint takes no input.
CUSTOMER_EXCLUDED = ("admin/", "api/schema/")
MAX_ID_CANDIDATES = 60
# Forms whose defaults would end the sweep's world rather than test input: the admin's delete
# confirmations (their only field is post=yes) and sign-out.
SKIPPED_FORM_ACTIONS = ("/delete/", "/logout/")
ADMIN_MODEL_ROUTE = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/")


class World:
    def __init__(self):
        self.org = OrganizationFactory(slug="bad-input")
        self.owner = UserFactory(email="owner@bad-input.example")
        MembershipFactory(user=self.owner, organization=self.org, role=Role.OWNER)
        self.objects = TenantWorld().build_all(self.org)
        _, self.api_key = api_key_create(
            organization=self.org, name="sweep", role=Role.OWNER, expires_at=None, actor=self.owner
        )

    def session_client(self) -> Client:
        return verified_client(Client(), self.owner)

    def api_client(self) -> Client:
        return Client(headers={"Authorization": f"Bearer {self.api_key}"})

    def paths(self, route: sweep.Route):
        """The route filled with this organisation's own objects: the view does its real work."""
        for count, values in enumerate(sweep.value_sets(route, self.org.slug, self.objects)):
            if count >= MAX_ID_CANDIDATES:
                return
            yield sweep.build_path(route, values)


@pytest.fixture
def world():
    return World()


def customer_routes() -> list[sweep.Route]:
    routes = [r for r in sweep.walk_routes() if not r.pattern.startswith(CUSTOMER_EXCLUDED)]
    return [r for r in routes if not r.unknown_kwargs()]


def _page(client: Client, paths, route: sweep.Route) -> tuple[str, str, int]:
    """(path, html, status) of the first of the route's paths that renders; else the first path's answer."""
    first = None
    for path in paths(route):
        try:
            response = client.get(path)
            content = bad_input.body(response)
        except Exception:  # reported by the sweep itself, with the bad values
            content, response = b"", None
        status = response.status_code if response is not None else 0
        if status == 200 and "html" in response.get("Content-Type", ""):
            return path, content.decode("utf-8", "replace"), status
        first = first or (path, "", status)
    return first or ("", "", 0)


def _session_alive(client: Client) -> bool:
    return "_auth_user_id" in client.session


def sweep_pages(world: World, client_factory, routes, label: str, paths=None) -> tuple[list[str], dict]:
    paths = paths or world.paths
    failures: list[str] = []
    stats = {"pages": 0, "query_requests": 0, "forms": 0, "form_requests": 0}
    client = client_factory()
    forms: dict[tuple, bad_input.Form] = {}
    for route in routes:
        if route.is_api:
            continue
        path, html, _ = _page(client, paths, route)
        if not path:
            continue
        page_forms, link_params = bad_input.read_page(html, path) if html else ([], {})
        stats["pages"] += bool(html)
        params = {"q": "", "sort": "", "page": ""} | link_params
        for form in page_forms:
            if form.action.endswith(SKIPPED_FORM_ACTIONS):
                continue
            if form.method == "get":
                params |= form.fields
            else:
                forms.setdefault((form.action, tuple(sorted(form.fields))), form)
        form_fields = bad_input.view_form_fields(route.callback)
        if form_fields:
            forms.setdefault((path, tuple(sorted(form_fields))), bad_input.Form("post", path, form_fields))
        for description, data in bad_input.bad_variants(params):
            stats["query_requests"] += 1
            bad_input.check(client, "get", f"{path}?{bad_input.query_string(data)}",
                            f"{label} [{route.pattern}] {description}", failures)
        if not _session_alive(client):
            client = client_factory()
    for form in forms.values():
        stats["forms"] += 1
        for description, data in bad_input.bad_variants(form.fields):
            stats["form_requests"] += 1
            files = {name: _upload() for name in form.files}
            bad_input.check(client, "post", form.action, f"{label} form {form.action} {description}", failures,
                            data={**data, **files})
            if client_factory is not Client and not _session_alive(client):
                client = client_factory()  # the form signed the user out (sign out, revoke sessions)
    return failures, stats


def _upload():
    return SimpleUploadedFile("users.csv", "upn\nab\x00cd@example.com\n\u202eevil\n".encode(), "text/csv")


def test_every_page_search_filter_and_form_survives_bad_input(world):
    failures, stats = sweep_pages(world, world.session_client, customer_routes(), "signed in")
    # The sweep must have reached the pages and forms, or it proves nothing.
    assert stats["pages"] >= 25 and stats["forms"] >= 15, stats
    assert not failures, f"{len(failures)} requests failed ({stats}):\n" + "\n".join(failures)


def test_pages_for_visitors_survive_bad_input(world):
    """Sign-in, sign-up, password reset and other pages reached before signing in."""
    routes = [r for r in customer_routes() if not r.has_org and not r.is_api]
    failures, stats = sweep_pages(world, Client, routes, "visitor")
    assert stats["forms"] >= 3, stats
    assert not failures, f"{len(failures)} requests failed ({stats}):\n" + "\n".join(failures)


def _api_paths(world: World, operation: bad_input.Operation) -> list[str]:
    if not operation.path_params:
        return [operation.path]
    placeholder = re.compile(r"\{(\w+)\}")
    return [placeholder.sub(str(obj.pk), operation.path) for obj in list(world.objects.values())[:MAX_ID_CANDIDATES]]


def _api_path(client: Client, world: World, operation: bad_input.Operation) -> str:
    """A path of the operation that names an object the organisation has, if any does."""
    paths = _api_paths(world, operation)
    for path in paths if len(paths) > 1 else []:
        if client.get(path).status_code == 200:
            return path
    return paths[0]


def test_every_api_operation_survives_bad_input(world):
    client = world.api_client()
    failures: list[str] = []
    operations = [o for o in bad_input.api_operations() if o.path.startswith("/api/v1/")]
    requests = 0
    for operation in operations:
        path = _api_path(client, world, operation)
        label = f"API {operation.method.upper()} {operation.path}"
        if operation.method == "get":
            for description, data in bad_input.bad_variants({}, operation.query_params):
                requests += 1
                bad_input.check(client, "get", f"{path}?{bad_input.query_string(data)}", f"{label} {description}",
                                failures)
        elif operation.method in ("post", "put", "patch"):
            for description, data in bad_input.bad_variants({}, operation.body_fields):
                requests += 1
                bad_input.check(client, operation.method, path, f"{label} {description}", failures,
                                data=bad_input.json_body(data), content_type="application/json")
    assert len(operations) >= 25 and requests >= 200, (len(operations), requests)
    assert not failures, f"{len(failures)} API requests failed:\n" + "\n".join(failures)


def test_every_api_write_endpoint_refuses_deeply_nested_json(world):
    client = world.api_client()
    writes = [o for o in bad_input.api_operations() if o.method in ("post", "put", "patch")]
    assert len(writes) >= 10
    problems = []
    for operation in writes:
        path = _api_path(client, world, operation)
        try:
            response = getattr(client, operation.method)(path, data=bad_input.DEEP_JSON,
                                                         content_type="application/json")
        except RecursionError:
            problems.append(f"{operation.method.upper()} {path}: RecursionError")
            continue
        error = response.json().get("error", {}) if response.get("Content-Type") == "application/json" else {}
        if response.status_code != 400 or error.get("code") != "malformed_request" or "request_id" not in error:
            problems.append(f"{operation.method.upper()} {path}: {response.status_code} {response.content[:120]!r}")
    assert not problems, "Deeply nested JSON was not a 400 in the one error shape:\n" + "\n".join(problems)


def _admin_paths(world: World):
    """An admin route filled with an object of the model it administers (any organisation's: staff see all)."""

    def paths(route: sweep.Route):
        values = dict(sweep.NON_TENANT_KWARGS)
        match = ADMIN_MODEL_ROUTE.match(route.pattern)
        if route.id_kwargs and match:
            try:
                model = apps.get_model(match["app"], match["model"])
            except LookupError:
                return
            obj = next((o for o in world.objects.values() if type(o) is model), None)
            obj = obj or model._base_manager.order_by("pk").first()
            if obj is None:
                return
            values.update(dict.fromkeys(route.id_kwargs, str(obj.pk)))
        elif route.id_kwargs:
            return
        yield sweep.build_path(route, values)

    return paths


def test_staff_admin_searches_filters_and_forms_survive_bad_input(world):
    staff = UserFactory(email="ops@bad-input.example", is_staff=True, is_superuser=True)
    # Every role in the swept organisation: the admin shows (and its forms take) only what grants cover.
    StaffGrantFactory(staff=staff, organization=world.org, roles=list(StaffRole.values))
    routes = [r for r in sweep.walk_routes() if r.pattern.startswith("admin/") and not r.unknown_kwargs()]
    failures, stats = sweep_pages(world, lambda: verified_client(Client(), staff), routes, "staff",
                                  paths=_admin_paths(world))
    assert stats["pages"] >= 30 and stats["forms"] >= 15, stats
    assert not failures, f"{len(failures)} requests failed ({stats}):\n" + "\n".join(failures)
