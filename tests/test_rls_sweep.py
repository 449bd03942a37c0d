"""The safety net for row-level security: every customer page and API read answers the application role as it
answers the table owner.

The suite connects as the owner, whom row-level security does not bind, so a reader that forgets its context
(a user row read outside the person's or organisation's context, a join that hides the row it hangs on) passes
every other test and fails in production. Here one organisation, with one object of every tenant model, is
requested through every GET route of the URL configuration (dashboard pages, account pages, the API by session
and by API key) twice: as the owner, then as the application role with the system role on its own connection
(``tests.test_rls.ProductionRoles``). The status codes must agree, none may be a 5xx, and the lists that must
show the organisation's own rows (``tests/sweep.py`` OWN_ROWS) still show them.
See docs/decisions/043-row-level-security-on-users.md.
"""

from __future__ import annotations

import contextlib
import re

import pytest
from django.db import connection
from django.test import Client

from accounts.api_keys import api_key_create
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from accounts.tests.helpers import verified_client
from tests import sweep
from tests.tenant_objects import TenantWorld
from tests.test_rls import ProductionRoles

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-level security needs PostgreSQL"),
]

# Routes with no kwargs that are not customer reads (the sweep requests every other one).
NOT_SWEPT = ("accounts/logout/",)
TRIES_PER_ROUTE = 4


def _routes_and_paths(org, objects) -> list[tuple[sweep.Route, list[str]]]:
    """Every swept route with the paths to try for it: its id kwargs filled with the organisation's own objects,
    those whose model the route names first (``tests/sweep.py`` candidate_objects falls back to every object)."""
    routes = []
    for route in sweep.walk_routes():
        if route.pattern.startswith(sweep.EXCLUDED_PREFIXES) or route.unknown_kwargs() or route.pattern in NOT_SWEPT:
            continue
        words = set(re.findall(r"[a-z]+", route.pattern.replace("-", "").replace("_", "")))
        ordered = dict(sorted(objects.items(), key=lambda item: type(item[1])._meta.model_name not in words))
        paths = [sweep.build_path(route, values) for values in sweep.value_sets(route, org.slug, ordered)]
        routes.append((route, paths))
    return routes


def _answer(client: Client, path: str) -> tuple[int, str]:
    try:
        response = client.get(path)
    except Exception as exc:  # reported with the others, not the first one alone
        return 599, f"raised {type(exc).__name__}: {exc}"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body.decode("utf-8", "replace")


def _found_as_owner(client: Client, paths: list[str]) -> tuple[str, int]:
    """The first path the owner gets anything but a 404 for (the object the route is about), else the first.
    Among the first few only: the objects the route names come first, and the sweep must stay fast."""
    for path in paths[:TRIES_PER_ROUTE]:
        status, _ = _answer(client, path)
        if status != 404:
            return path, status
    return paths[0], 404


@pytest.mark.django_db(transaction=True)
def test_every_customer_read_answers_the_application_role_as_it_answers_the_owner(settings):
    org = OrganizationFactory(slug="rls-sweep")
    owner = UserFactory()
    MembershipFactory(user=owner, organization=org, role=Role.OWNER)
    objects = TenantWorld().build_all(org)
    own_ids = {label: str(obj.pk) for label, obj in objects.items()}
    _, plaintext = api_key_create(organization=org, name="rls sweep", role=Role.OWNER, expires_at=None, actor=owner)
    clients = {
        "page": verified_client(Client(), owner),
        "API session": verified_client(Client(headers={"X-Organization": org.slug}), owner),
        "API key": Client(headers={"Authorization": f"Bearer {plaintext}"}),
    }
    requests = []
    for route, paths in _routes_and_paths(org, objects):
        for label in ("API session", "API key") if route.is_api else ("page",):
            path, status = _found_as_owner(clients[label], paths)
            requests.append((label, route.pattern, path, status))
    assert len(requests) > 200
    failures = []
    with ProductionRoles(settings):
        for label, pattern, path, expected in requests:
            status, body = _answer(clients[label], path)
            if status != expected or status >= 500:
                crash = body[:300] if status >= 500 else ""
                failures.append(f"{label} [{pattern}] GET {path}: {expected} as the owner, {status} as the application "
                                f"role {crash}")
                continue
            hidden = sorted(m for m in sweep.OWN_ROWS.get(pattern, ()) if own_ids[m] not in body
                            and own_ids[m].replace("-", "") not in body)
            if status == 200 and hidden:
                failures.append(f"{label} [{pattern}] GET {path}: the application role does not see the own {hidden}")
    assert not failures, "Readers that differ under row-level security:\n" + "\n".join(failures)


@pytest.mark.django_db(transaction=True)
def test_every_staff_admin_page_under_a_grant_answers_the_application_role_as_it_answers_the_owner(settings):
    """The staff admin reads inside the tenant context of the organisations a grant covers (decision 021): each
    registered model's list, and the change page of the organisation's own object of that model, as a superuser
    holding every role's grant, answer the same as the application role as as the owner, and never a 5xx."""
    from django.contrib import admin
    from django.urls import NoReverseMatch, reverse

    from accounts.models import StaffRole
    from accounts.tests.factories import StaffGrantFactory

    org = OrganizationFactory(slug="rls-admin-sweep")
    owner = MembershipFactory(organization=org, role=Role.OWNER).user
    objects = TenantWorld().build_all(org)
    grant = StaffGrantFactory(organization=org, roles=list(StaffRole.values), staff__is_superuser=True)
    staff = verified_client(Client(), grant.staff)
    by_model = {type(obj): obj for obj in objects.values()}
    by_model[type(org)], by_model[type(owner)] = org, owner
    paths = []
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        paths.append(reverse("admin:{}_{}_changelist".format(*info)))
        if model in by_model:
            with contextlib.suppress(NoReverseMatch):
                paths.append(reverse("admin:{}_{}_change".format(*info), args=[by_model[model].pk]))
    as_owner = {path: _answer(staff, path)[0] for path in paths}
    assert sum(status == 200 for status in as_owner.values()) > 20
    failures = []
    with ProductionRoles(settings):
        for path in paths:
            status, body = _answer(staff, path)
            if status != as_owner[path] or status >= 500:
                crash = body[:300] if status >= 500 else ""
                failures.append(f"staff admin GET {path}: {as_owner[path]} as the owner, {status} as the "
                                f"application role {crash}")
    assert not failures, "Staff admin readers that differ under row-level security:\n" + "\n".join(failures)
