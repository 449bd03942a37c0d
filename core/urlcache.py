"""URL reversing remembered per process: what templates' ``{% url %}`` and ``{% static %}`` cost on every page.

``django.urls.reverse`` walks the resolver's candidate patterns and formats the match on every call, about
0.1 ms each here; the sign-in page makes six and a dashboard page dozens (the navigation, row links), which
was a tenth of the sign-in page's time (docs/performance.md). The answer depends only on the URL
configuration, the script prefix, the namespace being rendered and the arguments, so it is remembered under
exactly those. Only plain arguments (text, whole numbers, UUIDs) are: an object's text form may change while
it stays equal to itself (a model instance is equal by primary key), so such a call is always reversed anew.

The cache is bounded (a page listing rows links each row: arguments vary without limit) and is dropped
whenever Django drops its own URL caches' inputs: a changed ``ROOT_URLCONF`` or script prefix setting.
"""

from __future__ import annotations

import uuid

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf
from django.urls import reverse as django_reverse

MAX_ENTRIES = 4096
# Immutable, and their text form is their value (template literals arrive as SafeString, a str).
PLAIN = (str, int, uuid.UUID)
_reversed: dict = {}
_NO_MATCH = object()


def reverse(viewname, args=None, kwargs=None, current_app=None) -> str:
    """``django.urls.reverse``, remembered; raises ``NoReverseMatch`` where it does."""
    values = [*(args or ()), *(kwargs or {}).values()]
    if not isinstance(viewname, str) or not all(isinstance(value, PLAIN) for value in values):
        return django_reverse(viewname, args=args, kwargs=kwargs, current_app=current_app)
    key = (
        viewname,
        tuple((type(value), value) for value in args or ()),
        tuple(sorted((name, type(value), value) for name, value in (kwargs or {}).items())),
        current_app,
        get_script_prefix(),
        get_urlconf(),
    )
    url = _reversed.get(key)
    if url is None:
        try:
            url = django_reverse(viewname, args=args, kwargs=kwargs, current_app=current_app)
        except NoReverseMatch:
            # Remembered too: ``first_reverse`` tries names that may not exist on every page.
            url = _NO_MATCH
        if len(_reversed) >= MAX_ENTRIES:
            _reversed.clear()
        _reversed[key] = url
    if url is _NO_MATCH:
        raise NoReverseMatch(f"Reverse for {viewname!r} with these arguments not found.")
    return url


def clear() -> None:
    _reversed.clear()


@receiver(setting_changed)
def _forget_on_url_settings(*, setting, **kwargs) -> None:
    # Only what reverse() reads. Static URLs are remembered by the storage instance (core.storage), which
    # Django rebuilds when STATIC_URL or STORAGES change.
    if setting in ("ROOT_URLCONF", "FORCE_SCRIPT_NAME"):
        clear()
