"""Global Privacy Control: the ``Sec-GPC: 1`` signal is an opt-out of sale and sharing, and it is kept.

On every page request the middleware works out the visitor's opt-out (``request.privacy_opt_out``,
an :class:`~privacy.services.optouts.OptOutState` or ``None``), which the pages show as
"Opt-Out Request Honored" with its date:

- the signal counts only when a ``Sec-GPC`` value is exactly ``1`` (repeated headers arrive
  comma-joined; any ``1`` among them counts, as the spec says); ``0``, ``true`` and anything else
  are ignored;
- an anonymous browser's first request with the signal records a :class:`~privacy.models.BrowserOptOut`
  and sets the signed opt-out cookie (``privacy/optout_cookie.py``), so the opt-out holds for that
  browser on later requests without the header;
- for a signed-in person, the signal (or the browser's earlier opt-out) is recorded on their account
  and their organisations (``opt_out_user_record``); a later visit without it does not opt them back in.

Every response varies on ``Sec-GPC``, so no cache serves an opted-in page to a GPC visitor.
API requests are left to the API (``/api/``): they carry no browser state.
"""

from __future__ import annotations

from django.utils.cache import patch_vary_headers

from core.audit import Actor
from privacy import optout_cookie
from privacy.models import OptOutMethod
from privacy.selectors import user_opt_out
from privacy.services.optouts import OptOutState, opt_out_browser_record, opt_out_user_record

SKIPPED_PREFIXES = ("/api/", "/static/")


def gpc_signal(raw: str | None) -> bool:
    """True when the ``Sec-GPC`` header value is exactly "1" (after trimming optional whitespace)."""
    if not raw:
        return False
    return any(part.strip(" \t") == "1" for part in raw.split(","))


class GlobalPrivacyControlMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.gpc = gpc_signal(request.META.get("HTTP_SEC_GPC"))
        request.privacy_opt_out = None
        if request.path.startswith(SKIPPED_PREFIXES):
            return self.get_response(request)

        browser = optout_cookie.read(request)
        new_cookie = None
        if browser is None and request.gpc:
            record = opt_out_browser_record(method=OptOutMethod.GPC)
            browser = (record.browser_id, record.recorded_at.date(), record.method)
            new_cookie = browser
        if browser is not None:
            request.privacy_opt_out = OptOutState(since=browser[1], method=browser[2])

        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            record = user_opt_out(user)
            if record is None and browser is not None:
                record = opt_out_user_record(user=user, method=browser[2], actor=Actor.user(user))
            if record is not None:
                request.privacy_opt_out = OptOutState.of(record)

        response = self.get_response(request)
        if new_cookie is not None:
            optout_cookie.write(response, browser_id=new_cookie[0], since=new_cookie[1], method=new_cookie[2])
        patch_vary_headers(response, ["Sec-GPC"])
        return response
