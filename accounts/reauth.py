"""Re-verification for sensitive actions: a second-factor check within the last few minutes.

Every successful OTP verification calls :func:`mark_mfa_verified`. Sensitive views
(changing MFA devices, creating API keys, changing billing details, inviting
owners, privacy deletion) use :class:`RecentMFARequiredMixin` or
:func:`require_recent_mfa`, which send the user to re-verify and back.
"""

import time
from functools import wraps

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

SESSION_KEY = "mfa_verified_at"


def mark_mfa_verified(request) -> None:
    request.session[SESSION_KEY] = int(time.time())


def has_recent_mfa(request) -> bool:
    verified_at = request.session.get(SESSION_KEY)
    return bool(verified_at) and time.time() - verified_at <= settings.MFA_REVERIFY_SECONDS


def reverify_redirect(request):
    target = request.get_full_path() if request.method == "GET" else request.META.get("HTTP_REFERER", "/")
    url = reverse("accounts:mfa_verify") + "?" + urlencode({"next": target, "reason": "sensitive"})
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return redirect(url)


def require_recent_mfa(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not has_recent_mfa(request):
            return reverify_redirect(request)
        return view(request, *args, **kwargs)

    return wrapper


class RecentMFARequiredMixin:
    """Put before the view's other mixins' dispatch work that changes state."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not has_recent_mfa(request):
            return reverify_redirect(request)
        return super().dispatch(request, *args, **kwargs)
