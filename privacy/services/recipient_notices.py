"""GDPR Art. 19 notices: every recipient the disclosure log names is told of an erasure, correction or
restriction, automatically.

:func:`recipient_notices_open` (called by the erasure and correction services) opens or re-opens one
notice per recipient for the request, in the caller's transaction, and sends them on commit
(the ``privacy.send_recipient_notices`` task; the same task runs hourly from beat for any whose sending
failed). :func:`recipient_notices_send` emails each pending notice to the recipient's privacy contact
(``PRIVACY_RECIPIENT_CONTACTS``), one row lock at a time: the mail is sent before the row is marked sent
and committed, so a crash in between sends it again (at least once, never lost). A recipient without a
configured contact keeps its notice pending: the officer sends it by the agreed channel and marks it
sent (:func:`recipient_notice_mark_sent`). The message carries no personal data: the reference, the
action, the categories and dates; identifiers are given on request through a secure channel.
"""

from __future__ import annotations

from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from core.audit import Actor
from core.models import Disclosure
from core.tenancy import privacy_request_context, tenant_context
from privacy.models import PrivacyRequest, RecipientNotice
from privacy.services.history import history_add, history_audit
from privacy.services.requests import Action

SEND_TASK = "privacy.send_recipient_notices"
ACTIONS = ("erasure", "correction", "restriction")


def _enqueue_send(request_id) -> None:
    current_app.tasks[SEND_TASK].apply_async(kwargs={"request_id": str(request_id)})


def recipient_notices_open(request: PrivacyRequest, organization_ids, action: str = "erasure") -> list[RecipientNotice]:
    """One notice per recipient the disclosure log names for these organisations, telling of ``action``.

    A notice already sent is re-opened when it did not yet tell of ``action`` (a restriction after
    a correction, say). Sent on commit.
    """
    assert action in ACTIONS
    # The log has row-level security: read in these organisations' context.
    with tenant_context(*organization_ids):
        received = list(
            Disclosure.objects.filter(organization_id__in=organization_ids)
            .values("recipient")
            .annotate(last=Max("occurred_at"))
        )
        categories_of = {
            row["recipient"]: sorted(
                {
                    c
                    for cats in Disclosure.objects.filter(
                        organization_id__in=organization_ids, recipient=row["recipient"]
                    ).values_list("categories", flat=True)
                    for c in cats
                }
            )
            for row in received
        }
    notices = []
    for row in received:
        categories = categories_of[row["recipient"]]
        notice, created = RecipientNotice.objects.select_for_update().get_or_create(
            request=request,
            recipient=row["recipient"],
            defaults={"categories": categories, "last_disclosed_at": row["last"], "actions": [action]},
        )
        if not created and action not in notice.actions:
            notice.actions = [*notice.actions, action]
            notice.categories = sorted({*notice.categories, *categories})
            notice.status, notice.sent_at = RecipientNotice.Status.PENDING, None
            notice.save(update_fields=["actions", "categories", "status", "sent_at", "updated_at"])
        notices.append(notice)
    if notices:
        transaction.on_commit(lambda: _enqueue_send(request.pk))
    return notices


def recipient_notices_send(*, request_id=None) -> int:
    """Email every pending notice (of one request, or all) whose recipient has a contact. Safe to repeat."""
    contacts = settings.PRIVACY_RECIPIENT_CONTACTS
    pending = RecipientNotice.objects.filter(status=RecipientNotice.Status.PENDING, recipient__in=list(contacts))
    if request_id is not None:
        pending = pending.filter(request_id=request_id)
    sent = 0
    for notice_id, notice_request_id in pending.values_list("pk", "request_id"):
        # Each in its request's context (decision 048): the notice names the request and its history is written.
        with privacy_request_context(notice_request_id):
            notice = (RecipientNotice.objects.select_for_update(skip_locked=True).select_related("request")
                      .filter(pk=notice_id, status=RecipientNotice.Status.PENDING).first())
            if notice is None:
                continue  # sent meanwhile, or another worker holds it
            address = contacts[notice.recipient]
            label = dict(Disclosure.Recipient.choices).get(notice.recipient, notice.recipient)
            body = render_to_string("privacy/email/recipient_notice.txt", {
                "notice": notice,
                "recipient_label": label,
                "actions": ", ".join(notice.actions or ["erasure"]),
                "categories": ", ".join(notice.categories),
                "officer_name": settings.PRIVACY_OFFICER_NAME,
                "officer_email": settings.PRIVACY_OFFICER_EMAIL,
            })
            send_mail(subject=f"GDPR Art. 19 notice, our reference {notice.request.reference}", message=body,
                      from_email=None, recipient_list=[address])
            notice.status, notice.sent_at, notice.sent_to = RecipientNotice.Status.SENT, timezone.now(), address
            notice.sends += 1
            notice.save(update_fields=["status", "sent_at", "sent_to", "sends", "updated_at"])
            history_add(notice.request, Action.NOTE, note=f"Art. 19 notice sent to {label} ({address})")
            history_audit(notice.request, "recipient_notified", Actor.system("privacy.art19"),
                          recipient=notice.recipient, actions=notice.actions)
            sent += 1
    return sent


def recipient_notice_mark_sent(*, notice_id, actor: User) -> RecipientNotice:
    """The officer sent the Art. 19 notice to the recipient (by the channel agreed with them). In the request's
    context (decision 048), which the notice names."""
    request_id = RecipientNotice.objects.values_list("request_id", flat=True).get(pk=notice_id)
    with privacy_request_context(request_id):
        return _mark_sent(notice_id=notice_id, actor=actor)


def _mark_sent(*, notice_id, actor: User) -> RecipientNotice:
    notice = RecipientNotice.objects.select_for_update().select_related("request").get(pk=notice_id)
    if notice.status == RecipientNotice.Status.SENT:
        return notice
    notice.status, notice.sent_at = RecipientNotice.Status.SENT, timezone.now()
    notice.save(update_fields=["status", "sent_at", "updated_at"])
    history_add(notice.request, Action.NOTE, actor=actor, note=f"Art. 19 notice sent to {notice.recipient}")
    history_audit(notice.request, "recipient_notified", Actor.staff(actor), recipient=notice.recipient)
    return notice
