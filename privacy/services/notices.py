"""Status emails to the requester, one template per step, sent after the transaction commits."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from privacy.models import PrivacyRequest, PrivacyRequestEvent

SUBJECTS = {
    "code": "Your verification code for privacy request {ref}",
    "acknowledged": "We received your privacy request {ref}",
    "approved": "Your privacy request {ref} is approved",
    "denied": "Your privacy request {ref} was denied",
    "extended": "We need more time for your privacy request {ref}",
    "completed": "Your privacy request {ref} is complete",
    "export_ready": "Your privacy request {ref}: your file is ready",
}


def request_email_send(*, request: PrivacyRequest, template: str, context: dict | None = None) -> None:
    """Email the requester about ``request`` with ``privacy/email/<template>.txt``; logged in its history.

    The text is rendered now (inside the transaction, so it says what was decided) and sent on commit.
    """
    site = settings.SITE_URL.rstrip("/")
    status_url = site + reverse("privacy:my_request", args=[request.reference]) if request.requester_id else ""
    body = render_to_string(
        f"privacy/email/{template}.txt",
        {
            "request": request,
            "officer_name": settings.PRIVACY_OFFICER_NAME,
            "officer_email": settings.PRIVACY_OFFICER_EMAIL,
            "notice_url": site + reverse("privacy:notice"),
            "status_url": status_url,
            **(context or {}),
        },
    )
    subject = SUBJECTS[template].format(ref=request.reference)
    recipient = request.requester_email
    PrivacyRequestEvent.objects.create(
        request=request, action=PrivacyRequestEvent.Action.EMAILED, actor_label="system", note=subject
    )
    transaction.on_commit(
        lambda: send_mail(subject=subject, message=body, from_email=None, recipient_list=[recipient])
    )
