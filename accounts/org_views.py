"""The base every organisation page builds on: membership, role and tenant context, resolved once."""

from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404

from core.tenancy import tenant_context

from .roles import Perm, role_allows


class OrganizationMixin(AccessMixin):
    """Resolves the organisation (set by accounts' middleware from the URL's org_slug),
    checks the member's role, and runs the view inside that tenant's context.

    Not a member, or no organisation: 404, so existence does not leak. A member
    whose role lacks the permission: 403.

    The tenant context is the request's transaction (instead of ``ATOMIC_REQUESTS``' with a savepoint
    inside it), and a template response is rendered before it ends: what the templates read (the header's
    bell, lazy querysets) is under the same scope and row-level security as the view, and the page costs
    no savepoint, no second transaction and no ``set_config`` to restore (docs/performance.md). An error
    anywhere in the view or its rendering rolls the whole transaction back, as ``ATOMIC_REQUESTS`` did.
    """

    permission: str = Perm.VIEW

    @classmethod
    def as_view(cls, **initkwargs):
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

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
            response = super().dispatch(request, *args, **kwargs)
            if callable(getattr(response, "render", None)) and not getattr(response, "is_rendered", True):
                response.render()
            return response

    def get_permission(self) -> str:
        return self.permission

    def can(self, permission: str) -> bool:
        return role_allows(self.membership.role, permission)
