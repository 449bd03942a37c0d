"""API authentication: organisation-scoped API keys, or a browser session with a verified second factor."""

import hashlib
import hmac
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from core.api.errors import ApiError
from core.requestid import bind_log_context
from core.tenancy import bound_to_default_alias, tenant_context, unscoped_no_tenant

from .models import ApiKey
from .selectors import membership_for_slug

API_KEY_PREFIX = "clp"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_api_secret(secret: str) -> str:
    # The secret has 256 bits of entropy, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(secret.encode()).hexdigest()


def split_api_key(raw: str) -> tuple[str, str] | None:
    parts = raw.split("_")
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class ApiKeyPrincipal:
    """The caller behind an API key: authenticated, never staff, never a session user."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key

    def __str__(self):
        return f"API key {self.api_key.prefix}"

    def is_verified(self) -> bool:
        return True


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "api-key") or not token.strip():
            raise exceptions.AuthenticationFailed("Malformed Authorization header. Use 'Bearer <api key>'.")
        parts = split_api_key(token.strip())
        if parts is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        prefix, secret = parts
        # Authentication decides the tenant, so this lookup cannot be tenant-scoped yet. One statement, so
        # no transaction of its own: two round trips fewer on every API request.
        with unscoped_no_tenant(atomic=False):
            key = ApiKey.unscoped_objects.select_related("organization").filter(prefix=prefix).first()
        if key is not None:
            bound_to_default_alias([key])  # the key and its organisation, read as the system role
        if key is None or not hmac.compare_digest(key.secret_hash, hash_api_secret(secret)):
            raise exceptions.AuthenticationFailed("Unknown API key.")
        now = timezone.now()
        if not key.is_usable(now):
            raise exceptions.AuthenticationFailed("This API key has been revoked or has expired.")
        if key.organization.status != key.organization.Status.ACTIVE:
            raise exceptions.AuthenticationFailed("This organisation is not active.")
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            with tenant_context(key.organization):
                ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        request._request.organization = key.organization
        request._request.api_role = key.role
        # Unbound when the request's context ends (core.middleware.RequestIdMiddleware).
        bind_log_context(actor=f"api_key:{key.pk}")
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return self.keyword


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """A signed-in browser session, only once the second factor is verified.

    The organisation comes from the ``X-Organization`` header (its slug) or the
    organisation last opened in the dashboard.
    """

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        if not user.is_verified():
            raise ApiError("Verify your second factor before using the API.", code="mfa_required", status_code=403)
        slug = request.headers.get("X-Organization") or request._request.session.get("current_org")
        membership = membership_for_slug(user, slug) if slug else None
        request._request.organization = membership.organization if membership else None
        request._request.api_role = membership.role if membership else None
        return result

    def enforce_csrf(self, request):
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise ApiError(
                "CSRF verification failed. Reload the page and try again.", code="csrf_failed", status_code=403
            ) from exc
