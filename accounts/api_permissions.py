from rest_framework import permissions

from accounts.roles import Perm, role_allows


class OrganizationRolePermission(permissions.BasePermission):
    """The caller must act for an organisation, with a role that allows the view's action.

    Views name what each method or action needs in ``required_permissions``
    (method or action name -> Perm); reads default to Perm.VIEW.
    """

    message = "Your role does not allow this."

    def has_permission(self, request, view):
        if request.user is None or not request.user.is_authenticated:
            return False
        organization = getattr(request._request, "organization", None)
        if organization is None:
            self.message = "No organisation selected. Send X-Organization with the organisation's slug."
            return False
        return role_allows(getattr(request._request, "api_role", None), required_permission(request, view))


def required_permission(request, view) -> str:
    mapping = getattr(view, "required_permissions", {})
    action = getattr(view, "action", None)
    if action and action in mapping:
        return mapping[action]
    if request.method in mapping:
        return mapping[request.method]
    if request.method in permissions.SAFE_METHODS:
        return Perm.VIEW
    return mapping.get("write", "__denied__")
