"""Base views every dashboard page builds on, and the site-wide error pages."""

from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from accounts.selectors import memberships_for_user

from .api.errors import error_response
from .roles import Perm, role_allows
from .selectors import organization_overview
from .tenancy import tenant_context


class OrganizationMixin(AccessMixin):
    """Resolves the organisation (set by accounts' middleware from the URL's org_slug),
    checks the member's role, and runs the view inside that tenant's context.

    Not a member, or no organisation: 404, so existence does not leak. A member
    whose role lacks the permission: 403.
    """

    permission: str = Perm.VIEW

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        organization = getattr(request, "organization", None)
        membership = getattr(request, "membership", None)
        if organization is None or membership is None:
            raise Http404("No such organisation.")
        if not role_allows(membership.role, self.get_permission()):
            raise PermissionDenied("Your role does not allow this.")
        self.organization = organization
        self.membership = membership
        with tenant_context(organization):
            return super().dispatch(request, *args, **kwargs)

    def get_permission(self) -> str:
        return self.permission

    def can(self, permission: str) -> bool:
        return role_allows(self.membership.role, permission)


class OverviewView(OrganizationMixin, TemplateView):
    template_name = "dashboard/overview.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["overview"] = organization_overview(organization=self.organization)
        context["can_manage_tenant"] = self.can(Perm.TENANT_MANAGE)
        context["can_buy"] = self.can(Perm.LICENSES_MANAGE)
        context["can_manage_team"] = self.can(Perm.TEAM_MANAGE)
        context["can_view_activity"] = self.can(Perm.AUDIT_VIEW)
        return context


class HomeView(View):
    """Send a signed-in user to their organisation, or to sign-in or sign-up."""

    def get(self, request):
        if not request.user.is_authenticated:
            return redirect("accounts:login")
        slug = request.session.get("current_org")
        memberships = list(memberships_for_user(request.user).order_by("created_at"))
        if not memberships:
            return redirect("accounts:signup_organization")
        chosen = next((m for m in memberships if m.organization.slug == slug), memberships[0])
        return redirect(reverse("dashboard:overview", kwargs={"org_slug": chosen.organization.slug}))


def csrf_failure(request, reason=""):
    if request.path.startswith("/api/"):
        return error_response(403, "csrf_failed", "CSRF verification failed. Reload the page and try again.")
    return render(request, "errors/403_csrf.html", {"reason": reason}, status=403)


def bad_request(request, exception=None):
    return _error(request, 400, "bad_request", "The request could not be understood.")


def permission_denied(request, exception=None):
    return _error(request, 403, "permission_denied", "You do not have permission to do this.")


def page_not_found(request, exception=None):
    return _error(request, 404, "not_found", "The page or object was not found.")


def server_error(request):
    return _error(request, 500, "server_error", "Something went wrong on our side. We have logged it.")


def _error(request, status, code, message):
    if request.path.startswith("/api/"):
        return error_response(status, code, message)
    return render(request, "errors/error.html", {"status": status, "message": message}, status=status)
