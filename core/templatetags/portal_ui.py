"""Template tags for the shared components: safe URL lookup and small formatting helpers.

The organisation navigation and switcher name every app, so they live on the roof
(``portal_shell``).

Pages link to sections other engineers are still building, so URL lookups here
return "" instead of raising when a route does not exist yet; templates render
such links as disabled text.
"""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch

from core import urlcache
from core.timezones import format_day, format_moment, organization_zone

register = template.Library()


def first_reverse(names, kwargs) -> str:
    for name in names:
        try:
            return urlcache.reverse(name, kwargs=kwargs or None)
        except NoReverseMatch:
            continue
    return ""


def organization_from_context(context):
    request = context.get("request")
    return getattr(request, "organization", None) or context.get("organization")


@register.simple_tag(takes_context=True)
def org_url(context, *names, **kwargs) -> str:
    """The URL of the first of ``names`` that exists for the current organisation, else "".

    ``{% org_url "licensing:catalog" as catalog_url %}{% if catalog_url %}...{% endif %}``
    """
    organization = organization_from_context(context)
    if organization is None:
        return ""
    return first_reverse(names, {"org_slug": organization.slug, **kwargs})


@register.simple_tag
def safe_url(*names, **kwargs) -> str:
    """The URL of the first of ``names`` that exists (for pages outside an organisation), else ""."""
    return first_reverse(names, kwargs)


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
    "warning": {
        "pending", "at_risk", "expiring", "processing", "running", "queued", "due", "trial", "suspended", "partial",
    },
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


@register.filter
def day(value) -> str:
    """The product's one date format: ``{{ subscription.renews_on|day }}`` gives "17 Dec 2026"."""
    return format_day(value)


@register.filter
def moment(value) -> str:
    """A time in the active (organisation's) zone, named: "16 Dec 2026, 14:05 EST"."""
    return format_moment(value)


@register.filter
def iso(value) -> str:
    """The machine-readable form for ``<time datetime>``: a date as YYYY-MM-DD, a datetime in ISO 8601."""
    return value.isoformat() if hasattr(value, "isoformat") else ""
