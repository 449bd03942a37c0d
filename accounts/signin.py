"""Sign-in bookkeeping: the attempt log, the browser's device cookie, and tracked sessions.

Session keys are stored encrypted under the user's key (so a revoke can delete the
Django session) and as a SHA-256 hash (so the current session can be found).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.models import update_last_login
from django.core.cache import cache
from django.utils import timezone
from django_otp import login as otp_login

from accounts.models import SignInEvent
from core.audit import Actor, audit_record
from core.blind_index import ip_index, network_index, normalise_ip
from core.crypto import blind_index
from core.middleware import client_ip
from core.requestid import get_client_ip
from core.tenancy import person_context

from .models import EMAIL_INDEX, User, UserSession
from .reauth import mark_mfa_verified

DEVICE_COOKIE = "clp_device"  # sent as settings.COOKIE_NAME_PREFIX + this ("__Host-" over HTTPS)
DEVICE_COOKIE_SALT = "accounts.device-cookie"
DEVICE_COOKIE_MAX_AGE = 60 * 60 * 24 * 400
USER_AGENT_MAX = 300
LAST_SEEN_INTERVAL_SECONDS = 300
_LAST_SEEN_SESSION_KEY = "session_seen_at"
# The session's sign-in time and last request, for its absolute and idle limits (SessionLifetimeMiddleware).
SESSION_STARTED_KEY = "session_started_at"
SESSION_ACTIVE_KEY = "session_active_at"


def axes_username(request, credentials) -> str:
    """What django-axes counts failures under: the email's blind index, never the address itself.

    Normalised like the login lookup, so "A@x.com" and "a@x.com " share one counter.
    """
    source = credentials if credentials else getattr(request, "POST", {})
    raw = (source or {}).get(settings.AXES_USERNAME_FORM_FIELD) or ""
    return blind_index(EMAIL_INDEX, str(raw)[:320]) if raw else ""


def axes_client_ip(request) -> str:
    """What django-axes counts failures per address under: the address's keyed index, never the
    address itself (the same client address as everywhere else: ``core.middleware.client_ip``)."""
    return ip_index(client_ip(request)) or ""


def device_id(request) -> str:
    """The browser's long-lived random id, from its signed cookie, or a new one to set."""
    existing = getattr(request, "_clp_device_id", None)
    if existing:
        return existing
    value = request.get_signed_cookie(
        settings.COOKIE_NAME_PREFIX + DEVICE_COOKIE, default="", salt=DEVICE_COOKIE_SALT, max_age=DEVICE_COOKIE_MAX_AGE
    )
    if not value or len(value) > 64:
        value = secrets.token_hex(16)
        request._clp_device_cookie_new = True
    request._clp_device_id = value
    return value


def set_device_cookie(request, response):
    if getattr(request, "_clp_device_cookie_new", False):
        response.set_signed_cookie(
            settings.COOKIE_NAME_PREFIX + DEVICE_COOKIE,
            request._clp_device_id,
            salt=DEVICE_COOKIE_SALT,
            max_age=DEVICE_COOKIE_MAX_AGE,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
    return response


@dataclass(frozen=True)
class SignInVerdict:
    """What login monitoring says about one attempt: go on, or refuse it with a message for the person."""

    blocked: bool = False
    message: str = ""


ALLOWED = SignInVerdict()

# Login monitoring lives a floor up (security) and registers here from its AppConfig.ready(): an object
# with ``assess(*, event, request) -> SignInVerdict`` and ``flags(events) -> {event id: [label, ...]}``.
_monitors: list = []


def register_sign_in_monitor(monitor) -> None:
    if monitor not in _monitors:
        _monitors.append(monitor)


def sign_in_flags(events) -> dict[int, list[str]]:
    """The monitoring flags of each event, for the person's sign-in activity page."""
    flags: dict[int, list[str]] = {}
    for monitor in _monitors:
        for event_id, labels in monitor.flags(events).items():
            flags.setdefault(event_id, []).extend(labels)
    return flags


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX]


# Wrong current passwords typed into the password change form, per user. Like the sign-in lockout, the
# limit is checked before the form hashes anything: a stolen session cannot turn the form into a
# password-guessing or Argon2-burning machine.
_PASSWORD_CHECK_FAILURES = "accounts:password-check-failures:{}"


def password_check_locked(user: User) -> bool:
    return cache.get(_PASSWORD_CHECK_FAILURES.format(user.pk), 0) >= settings.AXES_FAILURE_LIMIT


def password_check_failed(user: User) -> None:
    key = _PASSWORD_CHECK_FAILURES.format(user.pk)
    cache.add(key, 0, timeout=int(settings.AXES_COOLOFF_TIME * 3600))
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr: this failure starts a new window
        cache.set(key, 1, timeout=int(settings.AXES_COOLOFF_TIME * 3600))


def password_check_reset(user: User) -> None:
    cache.delete(_PASSWORD_CHECK_FAILURES.format(user.pk))


def sign_in_event_record(
    *, request, user: User | None, email: str = "", succeeded: bool, factor: str, reason: str = ""
) -> SignInEvent:
    """Log one attempt, in SignInEvent and in the audit chain, and let login monitoring judge it: the returned
    event's ``verdict`` says whether the sign-in flow must refuse it. The attempted email is kept only as its
    blind index, and not in the chain at all."""
    # Row-level security shows the application role this person's attempts only (and attempts of no
    # person); monitoring's reads across people go through the system role (security.monitoring).
    with person_context(user):
        event = SignInEvent(
            occurred_at=timezone.now(),
            user=user,
            email_index=blind_index(EMAIL_INDEX, email[:320]) if email else (user.email_index if user else "") or "",
            ip_address=get_client_ip(),
            user_agent=_user_agent(request),
            device_id=device_id(request),
            succeeded=succeeded,
            factor=factor,
            failure_reason="" if succeeded else reason,
        )
        event.full_clean()
        event.save()
        # The chain too: sign-ins, their failures and second-factor results (factor totp, recovery, webauthn)
        # are security events the customer's log and an auditor must be able to trust, not only this table.
        audit_record(
            actor=Actor.user(user) if user is not None else Actor.system("sign-in"),
            action="signin.succeeded" if succeeded else "signin.failed",
            target=user,
            metadata={"factor": factor, **({"reason": event.failure_reason} if not succeeded else {}),
                      "sign_in_event": event.pk},
        )
        event.verdict = ALLOWED
        for monitor in _monitors:
            verdict = monitor.assess(event=event, request=request)
            if verdict.blocked:
                event.verdict = verdict
    return event


def second_factor_accept(*, request, device, factor: str, record: bool = True) -> None:
    """The person just proved their second factor with ``device``: the session counts as verified
    (and recently re-verified), and the sign-in is logged unless ``record`` is False."""
    otp_login(request, device)
    mark_mfa_verified(request)
    if record:
        sign_in_event_record(request=request, user=request.user, succeeded=True, factor=factor)


def _hash_key(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


def current_session_hash(request) -> str:
    key = request.session.session_key
    return _hash_key(key) if key else ""


def _session_store():
    return import_module(settings.SESSION_ENGINE).SessionStore


# Tracked sessions have row-level security per person (decision 035): every function below reads and
# writes them inside the person's own context (``person_context`` is also the transaction).


def last_login_record(sender, user, **kwargs) -> None:
    """Django's ``update_last_login`` receiver, in the person's own context: their row is theirs to write, and
    row-level security on users (decision 043) would let no other save change it. Connected in place of
    Django's in ``AccountsConfig.ready``, so every way in (the portal, the admin, a passkey) records it."""
    with person_context(user):
        update_last_login(sender, user, **kwargs)


def user_session_start(*, request, user: User) -> UserSession:
    """Log the user in (password step done) and start tracking the new session."""
    with person_context(user):
        auth_login(request, user, backend="accounts.backends.PortalModelBackend")
        return user_session_track(request=request, user=user)


def user_session_track(*, request, user: User) -> UserSession:
    """Track the session ``user`` was just logged into, so it is listed and can be revoked."""
    with person_context(user):
        return _track(request=request, user=user)


def _track(*, request, user: User) -> UserSession:
    if request.session.session_key is None:
        request.session.save()
    session_key = request.session.session_key
    tracked = UserSession(
        user=user,
        session_key=session_key,
        session_key_hash=_hash_key(session_key),
        ip_address=get_client_ip(),
        user_agent=_user_agent(request),
    )
    tracked.full_clean()
    tracked.save()
    now = int(timezone.now().timestamp())
    request.session[_LAST_SEEN_SESSION_KEY] = now
    request.session[SESSION_STARTED_KEY] = now
    request.session[SESSION_ACTIVE_KEY] = now
    return tracked


def user_session_touch(request) -> None:
    """Refresh "last seen" at most every few minutes, so a busy page does not write every time."""
    now = int(timezone.now().timestamp())
    if now - request.session.get(_LAST_SEEN_SESSION_KEY, 0) < LAST_SEEN_INTERVAL_SECONDS:
        return
    request.session[_LAST_SEEN_SESSION_KEY] = now
    key_hash = current_session_hash(request)
    if key_hash:
        # A transaction of its own, but only on the touch (every few minutes), never on every request.
        with person_context(request.user):
            _touch(key_hash)


def _touch(key_hash: str) -> None:
    tracked = UserSession.objects.filter(session_key_hash=key_hash).first()
    if tracked is not None:
        changes = {"last_seen_at": timezone.now()}
        ip_address = normalise_ip(get_client_ip())
        if ip_address != tracked.ip_address:
            # Re-encrypted and re-indexed only when the address moved: most touches keep it.
            # An update, not save(): a session revoked meanwhile is simply gone.
            field = UserSession._meta.get_field("ip_address")
            changes["ip_address"] = None if ip_address is None else field.encrypt_for(tracked, ip_address)
            changes["ip_index"] = ip_index(ip_address)
            changes["ip_network_index"] = network_index(ip_address)
        UserSession.objects.filter(pk=tracked.pk).update(**changes)


def user_session_end(*, request) -> None:
    """Sign out of this browser."""
    user = getattr(request, "user", None)
    with person_context(user if user is not None and user.is_authenticated else None):
        key_hash = current_session_hash(request)
        if key_hash:
            UserSession.objects.filter(session_key_hash=key_hash).delete()
        auth_logout(request)


def _revoke(sessions) -> int:
    store = _session_store()
    count = 0
    for tracked in sessions:
        store(session_key=tracked.session_key).delete()
        tracked.delete()
        count += 1
    return count


def user_session_revoke(*, user: User, session_id) -> bool:
    """Sign out one of the user's other browsers: its Django session is deleted too."""
    with person_context(user):
        sessions = UserSession.objects.select_for_update().filter(user=user, pk=session_id)
        revoked = _revoke(sessions)
        if revoked:
            audit_record(actor=Actor.user(user), action="session.revoked", target=user, metadata={"count": revoked})
    return bool(revoked)


def user_sessions_revoke_others(*, user: User, request) -> int:
    keep = current_session_hash(request)
    with person_context(user):
        sessions = UserSession.objects.select_for_update().filter(user=user).exclude(session_key_hash=keep)
        revoked = _revoke(sessions)
        audit_record(
            actor=Actor.user(user), action="session.revoked_others", target=user, metadata={"count": revoked}
        )
    return revoked


def user_password_reset_complete(*, user: User) -> int:
    """A reset usually means the old password is in doubt: every browser must sign in again."""
    with person_context(user):
        revoked = _revoke(UserSession.objects.select_for_update().filter(user=user))
        audit_record(actor=Actor.user(user), action="user.password_reset", target=user, metadata={"sessions": revoked})
    return revoked


def user_password_change_complete(*, user: User, request, previous_session_hash: str) -> int:
    with person_context(user):
        return _password_change_complete(user=user, request=request, previous_session_hash=previous_session_hash)


def _password_change_complete(*, user: User, request, previous_session_hash: str) -> int:
    """Django already invalidates other sessions (their auth hash no longer matches); drop their rows too.

    Django also gave this browser a new session key, so its row is found by the previous key's hash
    and moved to the new key; otherwise it would be revoked with the others and go untracked.
    """
    sessions = UserSession.objects.select_for_update().filter(user=user)
    current = sessions.filter(session_key_hash=previous_session_hash).first() if previous_session_hash else None
    revoked = _revoke(sessions.exclude(pk=current.pk) if current else sessions)
    if current is not None and request.session.session_key:
        current.session_key = request.session.session_key
        current.session_key_hash = _hash_key(request.session.session_key)
        current.save(update_fields=["session_key", "session_key_hash"])
    audit_record(actor=Actor.user(user), action="user.password_changed", target=user, metadata={"sessions": revoked})
    return revoked
