"""Template tags for the dashboard shell: the organisation's navigation, the organisation switcher and the
notifications bell.

They live on the roof because the navigation names every app's pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import template

from accounts.roles import Perm, role_allows
from accounts.selectors import display_organization, memberships_for_user
from core.templatetags.portal_ui import first_reverse, organization_from_context
from core.tenancy import tenant_read_context
from licensing.selectors import directory as selectors_directory

register = template.Library()


@dataclass(frozen=True)
class NavSection:
    label: str
    url_names: tuple[str, ...]  # the first that exists is used: sections are built in parallel
    permission: str


# The organisation's primary navigation, in display order.
ORG_NAVIGATION: tuple[NavSection, ...] = (
    NavSection("Overview", ("dashboard:overview",), Perm.VIEW),
    NavSection("Licenses", ("licensing:licenses", "licensing:assignments"), Perm.VIEW),
    NavSection("Subscriptions", ("licensing:subscriptions",), Perm.VIEW),
    NavSection("Catalog", ("licensing:catalog",), Perm.LICENSES_MANAGE),
    NavSection("Usage", ("licensing:usage",), Perm.VIEW),
    NavSection("Billing", ("billing:overview", "billing:invoices"), Perm.BILLING_VIEW),
    NavSection("Privacy", ("privacy:overview", "privacy:requests"), Perm.PRIVACY_MANAGE),
    NavSection("Security", ("security:activity",), Perm.AUDIT_VIEW),
    NavSection("Team", ("team:members",), Perm.VIEW),
    NavSection("Settings", ("team:settings", "dashboard:settings"), Perm.ORG_SETTINGS),
)


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    current: bool


@register.simple_tag(takes_context=True)
def org_nav(context) -> list[NavLink]:
    """The sections the member's role may use. A section whose page does not exist yet has url "".

    The current section is the one whose URL is the longest prefix of the request path,
    so detail pages (``/licenses/<id>/``) highlight their section. Overview matches only itself.
    """
    request = context.get("request")
    organization = organization_from_context(context)
    membership = getattr(request, "membership", None) or context.get("membership")
    if organization is None or membership is None:
        return []
    kwargs = {"org_slug": organization.slug}
    entries = [
        (section, first_reverse(section.url_names, kwargs))
        for section in ORG_NAVIGATION
        if role_allows(membership.role, section.permission)
    ]
    path = request.path if request is not None else ""
    overview = entries[0][1] if entries else ""
    best = max(
        (url for _, url in entries if url and (path == url or (url != overview and path.startswith(url)))),
        key=len,
        default="",
    )
    return [NavLink(section.label, url, bool(url) and url == best) for section, url in entries]


@register.simple_tag(takes_context=True)
def user_memberships(context) -> list:
    """The signed-in user's organisations, for the switcher (one query per page)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    # An organisation's page has them already: the middleware resolved its organisation from the same list.
    memberships = getattr(request, "memberships", None)
    if memberships is None:
        memberships = memberships_for_user(user)
    return sorted(memberships, key=lambda m: m.organization.display_name.lower())


@register.simple_tag(takes_context=True)
def notification_bell(context) -> dict | None:
    """The header bell on every signed-in page: the current organisation's (or, on account pages, the one
    last worked in) unread notifications of this person. Two queries; None when signed out or before the
    second factor."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not getattr(user, "is_verified", lambda: False)():
        return None  # nothing before the second factor: titles name subscriptions and users
    organization = organization_from_context(context) or display_organization(
        user, request.session.get("current_org") if hasattr(request, "session") else None,
        getattr(request, "memberships", None))
    if organization is None:
        return None
    # Notifications are under row-level security, so the bell reads inside a tenant context: an organisation's
    # page renders inside its view's (accounts.org_views), which the bell shares; account pages, which have
    # none, get one of its own. Without either it would read nothing as the production database role.
    with tenant_read_context(organization):
        return {"organization": organization, **selectors_directory.bell_context(organization, user)}
