"""A request's history and audit trail, shared by intake and the officer's decisions."""

from __future__ import annotations

import functools

from accounts.models import User
from core.audit import Actor, audit_record
from core.tenancy import privacy_request_context
from privacy.models import PrivacyRequest, PrivacyRequestEvent


def history_add(request, action: str, *, actor: User | None = None, label: str = "", note: str = "") -> None:
    event = PrivacyRequestEvent(
        request=request, action=action, actor=actor, actor_label=label or ("officer" if actor else "system"), note=note
    )
    # The person is an instance in hand, whose row row-level security may not show here (decision 043).
    event.full_clean(exclude=["actor"])
    event.save()


def history_audit(request, action: str, actor: Actor, **metadata) -> None:
    audit_record(actor=actor, action=f"privacy.request_{action}", organization=request.organization_id, target=request,
                 metadata={"reference": request.reference, "kind": request.kind, **metadata})


def request_locked(request_id) -> PrivacyRequest:
    return PrivacyRequest.objects.select_for_update().get(pk=request_id)


def in_request_context(service):
    """Run ``service`` (keyword ``request_id``) wholly in its request's row-level-security context, on the
    application's connection with the audit chain, whoever calls it: the officer's desk, the requester's pages, a
    task (decision 048). The context's transaction is the service's: an exception rolls all of it back."""

    @functools.wraps(service)
    def in_context(*, request_id, **kwargs):
        with privacy_request_context(request_id):
            return service(request_id=request_id, **kwargs)

    return in_context
