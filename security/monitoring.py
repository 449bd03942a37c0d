"""Login monitoring in the sign-in flow: judge each recorded attempt and respond by risk.

``accounts.signin.sign_in_event_record`` calls :meth:`LoginMonitor.assess` for every attempt (the
monitor is registered from ``SecurityConfig.ready()``; accounts cannot import this floor). It replays
the account's recent sign-ins and the source's recent failures through the pure detectors in
``security/detection.py`` and keeps the findings for the new attempt. Then, by the highest risk:

- low (new device, new network): a "was this you?" email to the person;
- medium (impossible travel): every session of the account must give a fresh second factor on its
  next request (``security.middleware.StepUpMiddleware``), and the person is told;
- high (outside the allow-list, spraying source, repeated second-factor failures): the attempt is
  refused with a message saying why, security staff are alerted, and the person is told.

Each finding is a ``LoginSignal`` (the staff queue in the admin, the flags on the person's activity
page) and an audit event.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Membership, SignInEvent
from accounts.signin import ALLOWED, SignInVerdict
from core.audit import Actor, audit_record
from core.tenancy import tenant_context, unscoped_no_tenant

from . import detection, network
from .detection import Kind, LoginEvent, Monitor, Response
from .models import LoginSignal, SignInPolicy

HISTORY_DAYS = 90
HISTORY_LIMIT = 200
SOURCE_LIMIT = 100
STEP_UP_CACHE_SECONDS = 14 * 24 * 3600  # longer than any session lives (SESSION_COOKIE_AGE)
ACTOR = "login-monitoring"

BLOCK_MESSAGES = {
    Kind.OUTSIDE_ALLOW_LIST: "Your organisation allows sign-in only from its own networks, and this one is not "
                             "among them.",
    Kind.PASSWORD_SPRAY: "Many failed sign-ins to different accounts came from your network, so sign-ins from "
                         "it are paused for an hour.",
    Kind.MFA_FAILURES: "Too many wrong codes were entered. Someone may know your password: we emailed you, and you "
                       "can sign in again to try once more.",
}


def step_up_cache_key(user_id) -> str:
    return f"security:step-up:{user_id}"


def login_event(event: SignInEvent, *, allowed: bool | None = None) -> LoginEvent:
    """The one helper that turns a stored attempt into what the detectors see (keys, never addresses)."""
    return LoginEvent(
        at=event.occurred_at.timestamp(),
        account=str(event.user_id) if event.user_id else f"email:{event.email_index}",
        succeeded=event.succeeded,
        factor=event.factor,
        device=event.device_index or "",
        ip_key=event.ip_index or "",
        network_key=event.ip_network_index or "",
        location=network.locate(event.ip_address),
        allowed=allowed,
    )


def _history(event: SignInEvent) -> list[SignInEvent]:
    """What the detectors need to judge ``event``: the account's recent attempts and the source's
    recent password failures, oldest first. Two indexed queries, bounded."""
    since = event.occurred_at - timedelta(days=HISTORY_DAYS)
    account = Q(user_id=event.user_id) if event.user_id else Q(user__isnull=True, email_index=event.email_index)
    earlier = SignInEvent.objects.filter(occurred_at__gte=since, occurred_at__lte=event.occurred_at).exclude(
        pk=event.pk)
    rows = {e.pk: e for e in earlier.filter(account).order_by("-occurred_at", "-id")[:HISTORY_LIMIT]}
    if event.ip_index:
        rows.update((e.pk, e) for e in _source_failures(event))
    return sorted(rows.values(), key=lambda e: (e.occurred_at, e.pk))


def _source_failures(event: SignInEvent) -> list[SignInEvent]:
    """Every account's recent password failures from the event's source, for password spraying. Read as
    the system role: row-level security shows the application role one person's attempts only
    (docs/decisions/032-row-level-security-per-person.md). Committed attempts only, which are all the
    earlier ones."""
    window = event.occurred_at - timedelta(seconds=detection.SPRAY_WINDOW_SECONDS + detection.SPRAY_BLOCK_SECONDS)
    with unscoped_no_tenant():
        source = SignInEvent.objects.filter(
            occurred_at__gte=window, occurred_at__lte=event.occurred_at, ip_index=event.ip_index, succeeded=False,
            factor=SignInEvent.Factor.PASSWORD,
        ).exclude(pk=event.pk)
        return list(source.order_by("-occurred_at", "-id")[:SOURCE_LIMIT])


def sign_in_allowed_from(*, user_id, ip: str | None) -> bool | None:
    """None if none of the person's organisations has an allow-list; else whether ``ip`` is inside every one."""
    if not user_id:
        return None
    org_ids = list(Membership.objects.filter(user_id=user_id).values_list("organization_id", flat=True))
    if not org_ids:
        return None
    with tenant_context(*org_ids):
        lists = [p.allowed_networks for p in SignInPolicy.objects.all() if p.allowed_networks]
    if not lists:
        return None
    return all(network.in_networks(ip, networks) for networks in lists)


class LoginMonitor:
    """Registered with ``accounts.signin``; see the module docstring."""

    def assess(self, *, event: SignInEvent, request) -> SignInVerdict:
        allowed = sign_in_allowed_from(user_id=event.user_id, ip=event.ip_address)
        monitor = Monitor(tracked_accounts=64, tracked_sources=64)
        for past in _history(event):
            monitor.feed(login_event(past))
        findings = monitor.feed(login_event(event, allowed=allowed))
        if not findings:
            return ALLOWED
        return login_signals_record(event=event, findings=findings)

    def flags(self, events) -> dict[int, list[str]]:
        ids = [e.pk for e in events]
        labels: dict[int, list[str]] = {}
        for signal in LoginSignal.objects.filter(sign_in_event_id__in=ids).order_by("-risk", "kind"):
            # A refused attempt may still show "Succeeded" (the password was right): the flag says it was blocked.
            label = signal.get_kind_display()
            if signal.response == LoginSignal.Response.BLOCK:
                label = f"Blocked: {label}"
            labels.setdefault(signal.sign_in_event_id, []).append(label)
        return labels


@transaction.atomic
def login_signals_record(*, event: SignInEvent, findings) -> SignInVerdict:
    """Record the findings about one attempt and carry out the response their highest risk calls for."""
    response = detection.response_for(findings)
    user = event.user
    for finding in findings:
        signal = LoginSignal(occurred_at=event.occurred_at, user=user, sign_in_event=event, kind=finding.kind,
                             risk=int(finding.risk), response=response, detail=finding.detail)
        signal.full_clean()
        signal.save()
        audit_record(actor=Actor.system(ACTOR), action="security.login_signal", target=user,
                     metadata={"kind": finding.kind, "risk": int(finding.risk), "response": response,
                               "sign_in_event": event.pk})
    kinds = [f.kind for f in findings]
    if response == Response.STEP_UP and user is not None:
        step_up_require(user=user)
    if response == Response.BLOCK:
        _alert_security_staff(event=event, kinds=kinds)
    if user is not None and user.email and (event.succeeded or Kind.MFA_FAILURES in kinds):
        _was_this_you(event=event, user=user, kinds=kinds, response=response)
    if response == Response.BLOCK:
        worst = next(k for k in (Kind.OUTSIDE_ALLOW_LIST, Kind.PASSWORD_SPRAY, Kind.MFA_FAILURES) if k in kinds)
        return SignInVerdict(blocked=True, message=f"This sign-in was blocked. {BLOCK_MESSAGES[worst]} "
                                                   "If this was you and it keeps happening, contact your "
                                                   "administrator or our support team.")
    return ALLOWED


def step_up_require(*, user) -> None:
    """Every session of ``user`` must give a fresh second factor on its next request.

    Kept in the shared cache (Redis in production) so the check costs one cache read per request;
    the ``LoginSignal`` row is the durable record.
    """
    stamp = int(time.time())
    transaction.on_commit(lambda: cache.set(step_up_cache_key(user.pk), stamp, STEP_UP_CACHE_SECONDS))


def _labels(kinds) -> list[str]:
    return [LoginSignal.Kind(k).label for k in kinds]


def _was_this_you(*, event: SignInEvent, user, kinds, response: str) -> None:
    site = settings.SITE_URL.rstrip("/")
    location = network.locate(event.ip_address)
    body = render_to_string("security/email/was_this_you.txt", {
        "name": user.full_name, "when": event.occurred_at, "labels": _labels(kinds), "response": response,
        "place": f"{location.city}, {location.country}" if location else "an unknown place",
        "activity_url": site + reverse("accounts:activity"), "reset_url": site + reverse("accounts:password_reset"),
        "blocked": response == Response.BLOCK, "step_up": response == Response.STEP_UP,
    })
    recipient = user.email
    transaction.on_commit(lambda: send_mail(subject="New sign-in to your account: was this you?", message=body,
                                            from_email=None, recipient_list=[recipient]))


def _alert_security_staff(*, event: SignInEvent, kinds) -> None:
    recipients = list(settings.SECURITY_ALERT_EMAILS)
    if not recipients:
        return
    body = render_to_string("security/email/login_alert.txt", {
        "when": event.occurred_at, "labels": _labels(kinds), "event_id": event.pk,
        "user_id": event.user_id or "unknown account",
        "queue_url": settings.SITE_URL.rstrip("/") + reverse("admin:security_loginsignal_changelist"),
    })
    transaction.on_commit(lambda: send_mail(subject=f"Sign-in blocked: {', '.join(_labels(kinds))}", message=body,
                                            from_email=None, recipient_list=recipients))
