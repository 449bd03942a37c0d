"""Request gates owned by accounts: the MFA gate and the organisation resolver."""

from django.conf import settings
from django.http import Http404, HttpResponsePermanentRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.middleware import OTPMiddleware as BaseOTPMiddleware

from core.api.errors import error_response
from core.timezones import organization_zone

from .selectors import (
    display_organization,
    membership_by_previous_slug,
    memberships_and_current,
    memberships_of_request_user,
    session_device,
)
from .signin import SESSION_ACTIVE_KEY, SESSION_STARTED_KEY, user_session_end, user_session_touch


class OTPMiddleware(BaseOTPMiddleware):
    """django-otp's middleware, with the session's device found by ``accounts.selectors.session_device``.

    Its own lookup reads the device table on the application's connection outside any transaction,
    where row-level security per person (decision 035) shows no rows; ours reads that one row as the
    system role, bound to the session's user. Synchronous only: the portal is served over WSGI.
    """

    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        self._is_async = False

    def _verify_user_sync(self, request, user):
        self._init_user_fields(user)
        if user.is_authenticated:
            device = session_device(user, request.session.get(DEVICE_ID_SESSION_KEY))
            user.otp_device = self._finalize_device(request, user, device)
        return user


# The privacy notice and the privacy choices answer anyone, signed in or not, at any step of signing in.
PUBLIC_PRIVACY_URL_NAMES = frozenset(
    {
        "privacy:notice",
        "privacy:notice_version",
        "privacy:choices",
        "privacy:request_new",
        "privacy:request_verify",
        "well_known:gpc",
    }
)

# Reachable before the second factor is verified.
MFA_EXEMPT_URL_NAMES = frozenset(
    {
        "accounts:login",
        "accounts:logout",
        "accounts:signup",
        "accounts:verify_email",
        "accounts:verify_email_sent",
        "accounts:mfa_enroll",
        "accounts:mfa_verify",
        "accounts:passkey_verify_begin",
        "accounts:passkey_verify_complete",
        "accounts:passkey_jsi18n",
        "accounts:password_reset",
        "accounts:password_reset_done",
        "accounts:password_reset_confirm",
        "accounts:password_reset_complete",
        "accounts:invitation_accept",
        "portal:healthz",
        "portal:readyz",
        "portal:metrics",
    }
) | PUBLIC_PRIVACY_URL_NAMES

# Reachable before the email address is confirmed (the rest of the sign-in steps wait for it).
EMAIL_UNVERIFIED_URL_NAMES = frozenset(
    {
        "accounts:login",
        "accounts:logout",
        "accounts:verify_email",
        "accounts:verify_email_sent",
        "accounts:password_reset",
        "accounts:password_reset_done",
        "accounts:password_reset_confirm",
        "accounts:password_reset_complete",
        "accounts:invitation_accept",
        "portal:healthz",
        "portal:readyz",
        "portal:metrics",
    }
) | PUBLIC_PRIVACY_URL_NAMES


def _url_name(request) -> str:
    match = request.resolver_match
    if match is None:
        return ""
    return f"{match.namespace}:{match.url_name}" if match.namespace else (match.url_name or "")


class MFAGateMiddleware:
    """Nothing but enrollment and verification is reachable before the second factor.

    Every portal user administers a license pool, so MFA is mandatory for all.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.is_verified():
            return None
        name = _url_name(request)
        if request.path.startswith("/static/"):
            return None
        if (
            not user.email_verified
            and name not in EMAIL_UNVERIFIED_URL_NAMES
            and not request.path.startswith("/admin/")
        ):
            if request.path.startswith("/api/"):
                return error_response(403, "email_unverified", "Confirm your email address before using the API.")
            return redirect("accounts:verify_email_sent")
        if name in MFA_EXEMPT_URL_NAMES:
            return None
        if request.path.startswith("/api/"):
            # API calls with a session need a verified second factor; API keys do not use sessions.
            if "HTTP_AUTHORIZATION" in request.META:
                return None
            return error_response(403, "mfa_required", "Verify your second factor before using the API.")
        if request.path.startswith("/admin/"):
            return None  # the OTP admin site asks for the token itself
        target = reverse("accounts:mfa_verify")
        if request.method == "GET":
            target += "?" + urlencode({"next": request.get_full_path()})
        return redirect(target)


# The idle clock is written to the session at most this often, so a busy browser does not save its
# session on every request; a session therefore lasts up to this much longer than the idle timeout.
ACTIVITY_WRITE_SECONDS = 60


class SessionLifetimeMiddleware:
    """Ends a signed-in session that has been idle too long or has reached its absolute lifetime.

    SESSION_IDLE_SECONDS and SESSION_ABSOLUTE_SECONDS (portal/settings.py). The session is ended as a
    sign-out would (its tracked row goes too); the browser is sent to sign in again, an API client
    using the session gets 401. A session from before this check existed starts its clocks now.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = int(timezone.now().timestamp())
            session = request.session
            started = session.setdefault(SESSION_STARTED_KEY, now)
            active = session.get(SESSION_ACTIVE_KEY, now)
            if now - started > settings.SESSION_ABSOLUTE_SECONDS or now - active > settings.SESSION_IDLE_SECONDS:
                return self._expired(request)
            if SESSION_ACTIVE_KEY not in session or now - active >= ACTIVITY_WRITE_SECONDS:
                session[SESSION_ACTIVE_KEY] = now
        return self.get_response(request)

    def _expired(self, request):
        user_session_end(request=request)
        if request.path.startswith("/api/"):
            return error_response(401, "session_expired", "Your session has ended. Sign in again.")
        target = reverse("accounts:login")
        if request.method == "GET":
            target += "?" + urlencode({"next": request.get_full_path()})
        return redirect(target)


class SessionActivityMiddleware:
    """Keeps each tracked session's "last seen" current for the sessions page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            user_session_touch(request)
        return self.get_response(request)


def _to_current_slug(request, old: str, new: str):
    """The same page under the organisation's current slug (decision 041): a link from before slugs were
    made neutral still works for the organisation's members; anyone else gets the 404 they always got."""
    path = request.get_full_path()
    return HttpResponsePermanentRedirect(path.replace(f"/o/{old}/", f"/o/{new}/", 1))


class OrganizationMiddleware:
    """Resolves ``org_slug`` from the URL to the member's organisation and role, and activates the
    organisation's time zone for the request (core.timezones: one rule for every page).

    Not a member (or no such organisation) gives 404, never 403, so existence does not leak. Pages
    outside an organisation (profile, MFA, sessions) show times in the zone of the organisation the
    person last worked in.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def process_view(self, request, view_func, view_args, view_kwargs):
        slug = view_kwargs.get("org_slug")
        request.organization = None
        request.membership = None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None  # the view's login check redirects
        if slug is None:
            if not request.path.startswith(("/api/", "/static/")):
                # Read once for the page: the header's switcher and bell use the same list.
                request.memberships = memberships_of_request_user(user)
                organization = display_organization(user, request.session.get("current_org"), request.memberships)
                timezone.activate(organization_zone(organization))
            return None
        # The header's organisation switcher lists the same memberships (portal.templatetags.portal_shell).
        request.memberships, membership = memberships_and_current(user, slug)
        if membership is None:
            moved = membership_by_previous_slug(request.memberships, slug)
            if moved is not None and request.method in ("GET", "HEAD"):
                return _to_current_slug(request, slug, moved.organization.slug)
            raise Http404("No such organisation.")
        request.organization = membership.organization
        request.membership = membership
        timezone.activate(organization_zone(membership.organization))
        if request.session.get("current_org") != slug:
            request.session["current_org"] = slug
        return None
