import re

from django.conf import settings

from .requestid import (
    bind_log_context,
    get_request_id,
    reset_request_context,
    set_request_context,
    unbind_log_context,
)

_SAFE_ID = re.compile(r"^[A-Za-z0-9\-_.]{8,64}$")


def client_ip(request) -> str | None:
    """The client address. X-Forwarded-For is believed only behind a configured number
    of trusted proxies, so a client cannot spoof its address (or reset lockouts)."""
    proxies = settings.AXES_IPWARE_PROXY_COUNT or 0
    if proxies:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR")


class RequestIdMiddleware:
    """Give every request an id (accepting a well-formed one from the proxy) and its client address."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        tokens = set_request_context(incoming if _SAFE_ID.match(incoming) else None, client_ip(request))
        request.request_id = get_request_id()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request.request_id
            return response
        finally:
            reset_request_context(tokens)


class SecurityHeadersMiddleware:
    """Headers beyond Django's own: no caching of signed-in pages, locked-down browser features."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not request.path.startswith("/static/"):
            response["Cache-Control"] = "no-store"
        return response


class LogContextMiddleware:
    """Bind the signed-in actor's id to the request's log lines (API keys bind theirs when they authenticate)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        token = bind_log_context(actor=f"user:{user.pk}")
        try:
            return self.get_response(request)
        finally:
            unbind_log_context(token)

