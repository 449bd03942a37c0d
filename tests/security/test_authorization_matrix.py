"""The authorisation matrix: every customer role against every action of every route (ASVS 8.2.1).

Generated, not listed: the dashboard routes come from the URL configuration (tests/sweep.py), each view
says which permission it needs (OrganizationMixin.permission or get_permission(), per method), the API
operations come from the same URL configuration with each viewset's ``required_permissions``, and
accounts/roles.py says which role holds which permission. For each role the test then asks the portal
and compares:

- a role without the permission gets 403, for reads and writes alike (writes are refused before any
  input is looked at, so denied writes are sent with an empty body);
- a role with it is not refused (reads only: allowed writes are the business tests' job).

Routes outside an organisation (profile, sessions, MFA) belong to the signed-in person and take no role.

Staff grant roles (support reader, license operator, billing operator, privacy operator, security
responder) are checked over every grant-scoped admin (accounts/admin_grants.py): each role, holding a
grant to the organisation, reads exactly the areas ``AREA_ROLES`` gives it and is refused the rest, and
a role that may read but not change an area is refused every change there.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import Client, RequestFactory
from django.urls import resolve

from accounts.api_keys import api_key_create
from accounts.api_permissions import required_permission
from accounts.roles import ROLE_PERMISSIONS, Perm, Role, role_allows
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from accounts.tests.helpers import verified_client
from tests import sweep
from tests.tenant_objects import TenantWorld

pytestmark = pytest.mark.django_db

DENIED = "__denied__"


class Matrix:
    def __init__(self):
        self.org = OrganizationFactory(slug="matrix")
        self.objects = TenantWorld().build_all(self.org)
        self.browsers: dict[str, Client] = {}
        self.keys: dict[str, str] = {}
        owner = None
        for role in Role.values:
            user = UserFactory()
            MembershipFactory(user=user, organization=self.org, role=role)
            owner = owner or (user if role == Role.OWNER else None)
            self.browsers[role] = verified_client(Client(), user)
        for role in Role.values:
            self.keys[role] = api_key_create(
                organization=self.org, name=f"matrix {role}", role=role, expires_at=None, actor=owner
            )[1]

    def api(self, role: str) -> Client:
        return Client(headers={"Authorization": f"Bearer {self.keys[role]}"})

    def path_for(self, route: sweep.Route) -> str:
        """The route filled with this organisation's objects (the first candidates; the role check comes
        before any lookup, so which object does not change a refusal)."""
        return sweep.build_path(route, next(iter(sweep.value_sets(route, self.org.slug, self.objects))))


@pytest.fixture
def matrix():
    return Matrix()


def dashboard_permission(route: sweep.Route, method: str, path: str) -> str | None:
    """What the view needs for ``method``, asked of the view itself; None if it names nothing."""
    view_class = getattr(route.callback, "view_class", None)
    if view_class is None or not hasattr(view_class, "get_permission"):
        return None
    view = view_class()
    view.request = getattr(RequestFactory(), method.lower())(path)
    view.args, view.kwargs = (), resolve(path).kwargs
    return view.get_permission()


def api_permission(route: sweep.Route, method: str) -> tuple[str, bool]:
    """(permission, whether the route answers the method) from the viewset's own declaration."""
    callback = route.callback
    actions = getattr(callback, "actions", None)
    view_class = getattr(callback, "cls", None)
    if actions is not None:
        action = actions.get(method.lower())
        if action is None:
            return DENIED, False
    else:
        action = None
        if view_class is None or not hasattr(view_class, method.lower()):
            return DENIED, False
    view = SimpleNamespace(required_permissions=getattr(view_class, "required_permissions", {}), action=action)
    return required_permission(SimpleNamespace(method=method), view), True


def test_every_role_has_a_declared_set_of_permissions():
    assert set(ROLE_PERMISSIONS) == set(Role.values)
    for role, permissions in ROLE_PERMISSIONS.items():
        assert permissions <= set(Perm.values), role
    assert ROLE_PERMISSIONS[Role.OWNER] == frozenset(Perm.values)


def test_dashboard_matrix_every_role_every_route(matrix):
    problems, checked = [], 0
    routes = [r for r in sweep.swept_routes() if r.has_org and not r.is_api]
    assert len(routes) >= 30
    for route in routes:
        path = matrix.path_for(route)
        view_class = getattr(route.callback, "view_class", None)
        methods = ["GET"] + (["POST"] if view_class is not None and hasattr(view_class, "post") else [])
        for method in methods:
            needed = dashboard_permission(route, method, path)
            if needed is None:
                problems.append(f"{route.pattern}: the view names no permission (use OrganizationMixin)")
                break
            if needed not in Perm.values:
                problems.append(f"{route.pattern} {method}: unknown permission {needed!r}")
                continue
            for role in Role.values:
                allowed = role_allows(role, needed)
                if method == "POST" and allowed:
                    continue  # allowed writes: the business tests
                status = getattr(matrix.browsers[role], method.lower())(path).status_code
                checked += 1
                if (allowed and status == 403) or (not allowed and status != 403):
                    problems.append(f"{role:14} {method:4} {path} needs {needed}: got {status}")
    assert checked >= 200, checked
    assert not problems, "\n".join(problems)


def test_api_matrix_every_role_every_operation(matrix):
    problems, checked = [], 0
    routes = [r for r in sweep.swept_routes() if r.is_api]
    assert len(routes) >= 20
    for route in routes:
        path = matrix.path_for(route)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            needed, answers = api_permission(route, method)
            if not answers:
                continue
            if needed != DENIED and needed not in Perm.values:
                problems.append(f"{route.pattern} {method}: unknown permission {needed!r}")
                continue
            for role in Role.values:
                allowed = role_allows(role, needed)
                if method != "GET" and allowed:
                    continue
                client = matrix.api(role)
                response = (
                    getattr(client, method.lower())(path, data="{}", content_type="application/json")
                    if method != "GET"
                    else client.get(path)
                )
                checked += 1
                if (allowed and response.status_code == 403) or (not allowed and response.status_code != 403):
                    problems.append(f"{role:14} {method:6} {path} needs {needed}: got {response.status_code}")
                elif not allowed and response.json()["error"]["code"] != "permission_denied":
                    problems.append(f"{role:14} {method:6} {path}: 403 with {response.json()['error']}")
    assert checked >= 150, checked
    assert not problems, "\n".join(problems)


# The policy, written out here rather than read from accounts.grants, so the test is an oracle of its own:
# what each grant role may read and change (issue 10; docs/decisions/021-staff-access-grants.md).
STAFF_READS = {
    "support_reader": {"accounts", "licensing", "billing"},
    "license_operator": {"accounts", "licensing"},
    "billing_operator": {"accounts", "billing"},
    "privacy_operator": {"accounts", "privacy"},
    "security_responder": {"accounts", "security"},
}
STAFF_CHANGES = {
    "support_reader": set(),
    "license_operator": {"licensing"},
    "billing_operator": {"billing"},
    "privacy_operator": {"privacy"},
    "security_responder": {"security"},
}


def _grant_scoped_admins():
    from django.contrib import admin

    from accounts.admin_grants import GrantScopedAdmin

    return sorted(((model, model_admin) for model, model_admin in admin.site._registry.items()
                   if isinstance(model_admin, GrantScopedAdmin)), key=lambda pair: pair[0]._meta.label)


def _one_row(model_admin, organization):
    """A row of the admin's model that belongs to ``organization``, by the admin's own grant filter."""
    from core.tenancy import tenant_context

    with tenant_context(organization):
        rows = model_admin.grant_filter(model_admin.model._base_manager.all(), [organization.pk])
        return rows.order_by("pk").first()


def test_staff_grant_roles_over_every_grant_scoped_admin(matrix):
    from django.urls import reverse

    from accounts.models import StaffRole
    from accounts.tests.factories import StaffGrantFactory, TOTPDeviceFactory

    admins = _grant_scoped_admins()
    assert set(STAFF_READS) == set(StaffRole.values) == set(STAFF_CHANGES)
    assert {model_admin.grant_area for _, model_admin in admins} >= {"licensing", "billing", "privacy", "security"}
    problems, checked = [], 0
    for role in StaffRole.values:
        # A superuser holds every Django permission, so the grant alone decides (superusers are not exempt).
        staff = UserFactory(is_staff=True, is_superuser=True)
        TOTPDeviceFactory(user=staff)
        StaffGrantFactory(staff=staff, organization=matrix.org, roles=[role])
        client = verified_client(Client(), staff)
        for model, model_admin in admins:
            prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
            reads = model_admin.grant_area in STAFF_READS[role]
            changes = model_admin.grant_area in STAFF_CHANGES[role]
            row = _one_row(model_admin, matrix.org)
            row_url = reverse(f"{prefix}_change", args=[row.pk]) if row is not None else None
            listing = client.get(reverse(f"{prefix}_changelist"))
            checked += 1
            if reads and listing.status_code != 200:
                problems.append(f"{role:18} GET list {model._meta.label}: {listing.status_code}, may read it")
            if not reads and listing.status_code not in (200, 403, 404):
                problems.append(f"{role:18} GET list {model._meta.label}: {listing.status_code}")
            if row_url is None:
                continue
            # An area the role may not read lists none of the organisation's rows (an empty list or a refusal).
            if not reads and listing.status_code == 200 and row_url in listing.content.decode():
                problems.append(f"{role:18} GET list {model._meta.label}: shows a row it may not read")
            status = client.get(row_url).status_code
            checked += 1
            if (reads and status != 200) or (not reads and status not in (403, 404)):
                problems.append(f"{role:18} GET row {model._meta.label}: {status} (reads={reads})")
            if not changes:
                status = client.post(row_url, {}).status_code
                checked += 1
                if status not in (403, 404):
                    problems.append(f"{role:18} POST row {model._meta.label}: {status}, may not change it")
    assert checked >= 5 * len(admins), checked
    assert not problems, "\n".join(problems)
