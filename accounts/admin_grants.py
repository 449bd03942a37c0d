"""The one way the staff admin reads and changes customer rows: through the staff member's grants.

``GrantScopedAdmin`` is mixed into every admin over customer data. On each request it reads the
staff member's grants in force (``accounts.selectors.effective_staff_grants``: active, started,
not expired; nothing is cached past the request, so an expired or revoked grant stops working on
the very next request) and:

- limits the queryset to organisations whose grant covers the admin's ``grant_area``
  (``accounts.grants.AREA_ROLES``); no grant, no rows, superusers included (they break glass);
- runs the view inside those organisations' tenant context, so tenant managers and Postgres
  row-level security agree with it, and an object outside it is a 404;
- allows add, change, delete and actions only where a grant's role may change the area, and only
  on those organisations' rows; deleting needs a recent second-factor check;
- writes every read (list, detail, history, search) and every change to the audit chain, naming
  the grant that allowed it; audit events the services write for staff inside the view carry the
  grant too (``core.audit.staff_grants_in_force``).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect

from core.audit import Actor, audit_record, staff_grants_in_force
from core.tenancy import tenant_context

from .grants import roles_cover
from .reauth import has_recent_mfa, reverify_redirect
from .selectors import effective_staff_grants

_REQUEST_ATTR = "_staff_grants_in_force"


def request_grants(request) -> list:
    """This request's grants in force, read once per request (never across requests)."""
    grants = getattr(request, _REQUEST_ATTR, None)
    if grants is None:
        user = getattr(request, "user", None)
        grants = effective_staff_grants(user) if user is not None and user.is_authenticated and user.is_staff else []
        setattr(request, _REQUEST_ATTR, grants)
    return grants


def grants_for_area(request, area: str, *, change: bool = False) -> dict[str, object]:
    """Organisation id -> the grant that lets this staff member read (or change) ``area`` there."""
    covered: dict[str, object] = {}
    for grant in request_grants(request):
        if roles_cover(grant.roles, area, change=change):
            covered.setdefault(str(grant.organization_id), grant)
    return covered


def _grant_ref(grant) -> dict:
    return {"grant": str(grant.pk), **({"break_glass": True} if grant.break_glass else {})}


class GrantScopedAdmin:
    """Mix in before ``admin.ModelAdmin``. Set ``grant_area``; set ``grant_org_field`` to the ORM path from a
    row to its organisation when it is not ``organization`` (``pk`` for Organization itself)."""

    grant_area: str = ""
    grant_org_field: str = "organization"
    # Set False only to measure the cost of the checks (benchmarks/bench_staff_admin.py).
    grant_checks = True

    # --- scope --------------------------------------------------------------------------------
    def grant_orgs(self, request, *, change: bool = False) -> dict[str, object]:
        if not self.grant_area:
            raise ImproperlyConfiguredGrant(f"{type(self).__name__} names no grant_area.")
        return grants_for_area(request, self.grant_area, change=change)

    def grant_filter(self, queryset, org_ids):
        return queryset.filter(**{f"{self.grant_org_field}__in": list(org_ids)})

    def grant_org_ids_of(self, obj) -> set[str]:
        """The organisations a row belongs to (for a permission check on one object)."""
        if self.grant_org_field == "pk":
            return {str(obj.pk)}
        if "__" not in self.grant_org_field:
            value = getattr(obj, f"{self.grant_org_field}_id", None)
            return {str(value)} if value else set()
        model = type(obj)
        return {
            str(v) for v in model._default_manager.filter(pk=obj.pk).values_list(self.grant_org_field, flat=True) if v
        }

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not self.grant_checks:
            return queryset
        return self.grant_filter(queryset, self.grant_orgs(request))

    # --- permissions ----------------------------------------------------------------------------
    def _covers(self, request, obj, *, change: bool) -> bool:
        orgs = self.grant_orgs(request, change=change)
        if obj is None:
            return bool(orgs)
        return bool(self.grant_org_ids_of(obj) & orgs.keys())

    def has_view_permission(self, request, obj=None):
        allowed = super().has_view_permission(request, obj)
        if not self.grant_checks or obj is None or not allowed:
            return allowed  # the list itself is shown, empty without a grant
        return self._covers(request, obj, change=False) or self._covers(request, obj, change=True)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (
            not self.grant_checks or self._covers(request, obj, change=True)
        )

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (
            not self.grant_checks or self._covers(request, obj, change=True)
        )

    def has_add_permission(self, request, *args):
        return super().has_add_permission(request, *args) and (
            not self.grant_checks or self._covers(request, None, change=True)
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.grant_checks and not self.grant_orgs(request, change=True):
            return {}  # a reader runs no action at all
        return actions

    def response_action(self, request, queryset):
        if not self.grant_checks:
            return super().response_action(request, queryset)
        change = self.grant_orgs(request, change=True)
        if request.POST.get("action") == "delete_selected" and not has_recent_mfa(request):
            return reverify_redirect(request)
        selected = []
        for value in request.POST.getlist("_selected_action"):
            try:
                selected.append(self.model._meta.pk.to_python(value))
            except ValidationError:
                # Not an id of this table: refused before any action sees it (a clear message, not a 500).
                self.message_user(
                    request, "The selection names rows that do not exist; nothing was done.", messages.WARNING
                )
                return None
        # Only rows of organisations whose grant lets this staff member change them can be acted on.
        narrowed = self.grant_filter(queryset, change)
        response = super().response_action(request, narrowed)
        if not isinstance(response, HttpResponseRedirect):
            return response  # an intermediate page (a reason to give) or nothing selected: nothing done yet
        action = request.POST.get("action", "")
        if action not in self.get_actions(request) or not selected:
            return response
        for org_id in self._orgs_of_rows(narrowed.filter(pk__in=selected)) & change.keys():
            audit_record(
                actor=Actor.staff(request.user),
                action="staff.admin_action",
                organization=org_id,
                metadata={**_grant_ref(change[org_id]), "model": self.model._meta.label, "admin_action": action},
            )
        return response

    # --- views: inside the grants' tenant context, audited ----------------------------------------------
    def _scoped(self, request, view):
        if not self.grant_checks:
            return view()
        read = self.grant_orgs(request)
        change = self.grant_orgs(request, change=True)
        grant_ids = {org: str(grant.pk) for org, grant in {**read, **change}.items()}
        # No savepoint: the view is one request in one transaction (ATOMIC_REQUESTS), which an
        # exception leaving it rolls back anyway.
        with tenant_context(*({**read, **change}).keys(), savepoint=False), staff_grants_in_force(grant_ids):
            response = view()
            # Render here, inside the scope: a template reading a lazy relation must see what the view saw.
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        return response

    def changelist_view(self, request, extra_context=None):
        def view():
            response = super(GrantScopedAdmin, self).changelist_view(request, extra_context)
            changelist = (getattr(response, "context_data", None) or {}).get("cl")
            if changelist is not None and self.grant_checks:
                self._audit_list(request, changelist)
            return response

        return self._scoped(request, view)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        def view():
            response = super(GrantScopedAdmin, self).change_view(request, object_id, form_url, extra_context)
            if request.method == "GET" and getattr(response, "status_code", 0) == 200 and self.grant_checks:
                self._audit_object(request, object_id, "staff.viewed")
            return response

        return self._scoped(request, view)

    def add_view(self, request, form_url="", extra_context=None):
        return self._scoped(request, lambda: super(GrantScopedAdmin, self).add_view(request, form_url, extra_context))

    def delete_view(self, request, object_id, extra_context=None):
        if self.grant_checks and not has_recent_mfa(request):
            return reverify_redirect(request)
        return self._scoped(
            request, lambda: super(GrantScopedAdmin, self).delete_view(request, object_id, extra_context)
        )

    def history_view(self, request, object_id, extra_context=None):
        def view():
            response = super(GrantScopedAdmin, self).history_view(request, object_id, extra_context)
            if getattr(response, "status_code", 0) == 200 and self.grant_checks:
                self._audit_object(request, object_id, "staff.viewed_history")
            return response

        return self._scoped(request, view)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Outside the staff member's grants and missing look the same: 404, as on the customer side.
        if self.grant_checks:
            raise Http404("No such object.")
        return super()._get_obj_does_not_exist_redirect(request, opts, object_id)

    # --- the audit trail ------------------------------------------------------------------------
    def _orgs_of_rows(self, rows) -> set[str]:
        if self.grant_org_field == "pk":
            return {str(row.pk) for row in rows}
        if "__" not in self.grant_org_field:
            return {
                str(getattr(row, f"{self.grant_org_field}_id"))
                for row in rows
                if getattr(row, f"{self.grant_org_field}_id", None)
            }
        ids = [row.pk for row in rows]
        return {
            str(v)
            for v in self.model._default_manager.filter(pk__in=ids).values_list(self.grant_org_field, flat=True)
            if v
        }

    def _audit_list(self, request, changelist) -> None:
        rows = list(changelist.result_list)
        if not rows:
            return
        read = self.grant_orgs(request)
        counts: dict[str, int] = {}
        if "__" in self.grant_org_field:
            pairs = set(
                self.model._default_manager.filter(pk__in=[row.pk for row in rows]).values_list(
                    "pk", self.grant_org_field
                )
            )
            orgs = [org for _, org in pairs if org]
        elif self.grant_org_field == "pk":
            orgs = [row.pk for row in rows]
        else:
            orgs = [getattr(row, f"{self.grant_org_field}_id") for row in rows]
        for org in orgs:
            if org:
                counts[str(org)] = counts.get(str(org), 0) + 1
        change = self.grant_orgs(request, change=True)
        for org_id, count in sorted(counts.items()):
            grant = read.get(org_id) or change.get(org_id)
            if grant is None:
                continue  # a row also linked to an organisation outside the grants (a person in two)
            audit_record(
                actor=Actor.staff(request.user),
                action="staff.viewed_list",
                organization=org_id,
                metadata={
                    **_grant_ref(grant),
                    "model": self.model._meta.label,
                    "rows": count,
                    "searched": bool(changelist.query),
                    "page": changelist.page_num,
                },
            )

    def _audit_object(self, request, object_id, action: str) -> None:
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return
        read = {**self.grant_orgs(request), **self.grant_orgs(request, change=True)}
        for org_id in sorted(self.grant_org_ids_of(obj) & read.keys()):
            audit_record(
                actor=Actor.staff(request.user),
                action=action,
                organization=org_id,
                target=obj,
                metadata={**_grant_ref(read[org_id]), "model": self.model._meta.label},
            )

    def _audit_change(self, request, obj, action: str) -> None:
        if not self.grant_checks:
            return
        change = self.grant_orgs(request, change=True)
        for org_id in sorted(self.grant_org_ids_of(obj) & change.keys()):
            audit_record(
                actor=Actor.staff(request.user),
                action=action,
                organization=org_id,
                target=obj,
                metadata={**_grant_ref(change[org_id]), "model": self.model._meta.label},
            )

    def log_addition(self, request, obj, message):
        self._audit_change(request, obj, "staff.added")
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit_change(request, obj, "staff.changed")
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit_change(request, obj, "staff.deleted")
        return super().log_deletions(request, queryset)

    def save_model(self, request, obj, form, change):
        # A new row (or a row moved) must land in an organisation the staff member may change.
        if self.grant_checks and not self._covers(request, obj, change=True) and self.grant_org_ids_of(obj):
            raise PermissionDenied("No grant lets you change this organisation.")
        return super().save_model(request, obj, form, change)


class ImproperlyConfiguredGrant(RuntimeError):
    pass


def require_grant(request, area: str, organization, *, change: bool = False):
    """The grant that lets this staff member use ``area`` in ``organization``, or PermissionDenied."""
    grant = grants_for_area(request, area, change=change).get(str(getattr(organization, "pk", organization)))
    if grant is None:
        raise PermissionDenied("No grant covers this organisation.")
    return grant
