"""Template tags for the dashboard shell: safe URL lookup, the organisation navigation,
the organisation switcher, and small formatting helpers for the shared components.

Pages link to sections other engineers are still building, so URL lookups here
return "" instead of raising when a route does not exist yet; templates render
such links as disabled text.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.urls import NoReverseMatch, reverse

from accounts.selectors import memberships_for_user
from portal.roles import Perm, role_allows
from portal.selectors import organization_zone

register = template.Library()


def _first_reverse(names, kwargs) -> str:
    for name in names:
        try:
            return reverse(name, kwargs=kwargs or None)
        except NoReverseMatch:
            continue
    return ""


def _organization(context):
    request = context.get("request")
    return getattr(request, "organization", None) or context.get("organization")


@register.simple_tag(takes_context=True)
def org_url(context, *names, **kwargs) -> str:
    """The URL of the first of ``names`` that exists for the current organisation, else "".

    ``{% org_url "licensing:catalog" as catalog_url %}{% if catalog_url %}...{% endif %}``
    """
    organization = _organization(context)
    if organization is None:
        return ""
    return _first_reverse(names, {"org_slug": organization.slug, **kwargs})


@register.simple_tag
def safe_url(*names, **kwargs) -> str:
    """The URL of the first of ``names`` that exists (for pages outside an organisation), else ""."""
    return _first_reverse(names, kwargs)


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
    organization = _organization(context)
    membership = getattr(request, "membership", None) or context.get("membership")
    if organization is None or membership is None:
        return []
    kwargs = {"org_slug": organization.slug}
    entries = [
        (section, _first_reverse(section.url_names, kwargs))
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
    return sorted(memberships_for_user(user), key=lambda m: m.organization.display_name.lower())


@register.filter
def percent(value, maximum=100) -> int:
    """Whole percent of value/maximum, clamped to 0..100; 0 for missing or bad input."""
    try:
        value, maximum = float(value), float(maximum)
    except (TypeError, ValueError):
        return 0
    if maximum <= 0:
        return 0
    return max(0, min(100, round(value * 100 / maximum)))


# Common status words across the apps, mapped to a badge tone.
_TONES = {
    "success": {"active", "linked", "paid", "succeeded", "success", "completed", "complete", "done", "enabled", "ok"},
    "warning": {"pending", "expiring", "processing", "running", "queued", "due", "trial", "suspended", "partial"},
    "danger": {"failed", "error", "expired", "overdue", "cancelled", "canceled", "revoked", "disabled", "rejected"},
    "info": {"new", "draft", "scheduled", "open", "submitted", "in_progress"},
}


@register.filter
def status_tone(status) -> str:
    key = str(status or "").strip().lower().replace(" ", "_").replace("-", "_")
    for tone, words in _TONES.items():
        if key in words:
            return tone
    return "neutral"


@register.filter
def initials(name) -> str:
    words = [w for w in str(name or "").replace("@", " ").replace(".", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


@register.filter
def is_within(path, url) -> bool:
    """True when ``path`` is ``url`` or a page below it."""
    return bool(url) and str(path).startswith(str(url))


@register.filter
def as_zone(organization):
    """``{% timezone organization|as_zone %}``: never fails on an unknown zone name."""
    return organization_zone(organization)


@register.filter
def humanize_status(status) -> str:
    return str(status or "").replace("_", " ").replace("-", " ").strip().capitalize()


@register.filter
def page_window(page_obj) -> list:
    """Page numbers around the current page, with Paginator.ELLIPSIS for the gaps."""
    return list(page_obj.paginator.get_elided_page_range(page_obj.number, on_each_side=1, on_ends=1))
