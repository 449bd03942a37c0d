"""Customer roles and what each may do. One matrix, enforced by the base view and API classes."""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    LICENSE_ADMIN = "license_admin", "License admin"
    BILLING_ADMIN = "billing_admin", "Billing admin"
    VIEWER = "viewer", "Viewer"


class Perm(models.TextChoices):
    VIEW = "view", "See the organisation's dashboard"
    LICENSES_MANAGE = "licenses.manage", "Buy, change and assign licenses"
    TENANT_MANAGE = "tenant.manage", "Link or create the Microsoft tenant"
    BILLING_VIEW = "billing.view", "See invoices and spend"
    BILLING_MANAGE = "billing.manage", "Pay invoices, change billing details"
    PAYMENT_METHODS = "billing.payment_methods", "See and change payment methods"
    TEAM_MANAGE = "team.manage", "Invite and remove members"
    API_KEYS_MANAGE = "api_keys.manage", "Create and revoke API keys"
    ORG_SETTINGS = "org.settings", "Change organisation settings"
    PRIVACY_MANAGE = "privacy.manage", "Make privacy requests for the organisation"
    AUDIT_VIEW = "audit.view", "See the activity log"


ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(Perm.values),
    Role.LICENSE_ADMIN: frozenset({Perm.VIEW, Perm.LICENSES_MANAGE, Perm.TENANT_MANAGE, Perm.AUDIT_VIEW}),
    Role.BILLING_ADMIN: frozenset(
        {Perm.VIEW, Perm.BILLING_VIEW, Perm.BILLING_MANAGE, Perm.PAYMENT_METHODS, Perm.AUDIT_VIEW}
    ),
    Role.VIEWER: frozenset({Perm.VIEW, Perm.BILLING_VIEW}),
}


def role_allows(role: str | None, permission: str) -> bool:
    return role is not None and permission in ROLE_PERMISSIONS.get(role, frozenset())
