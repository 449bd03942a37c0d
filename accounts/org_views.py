"""The base every organisation page builds on: membership, role and tenant context, resolved once."""

from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404

from core.tenancy import tenant_context

from .roles import Perm, role_allows


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
