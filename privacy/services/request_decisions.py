"""The officer's work on a request: assign, note, approve, deny, extend, complete.

Refusals are :class:`~privacy.services.requests.PrivacyRequestError` with a stable code (409-style
conflicts: not verified, already decided, too late to extend). Every step is in the request's
history and the audit chain, and the requester is emailed at each decision.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core.audit import Actor
from privacy import deadlines
from privacy.models import OptOutMethod, PrivacyRequest
from privacy.selectors import is_privacy_officer, requester_account
from privacy.services import erasure, exports
from privacy.services.authorizations import authorization_document_discard, authorization_document_store
from privacy.services.history import history_add, history_audit, in_request_context, request_locked
from privacy.services.notices import request_email_send
from privacy.services.optouts import opt_out_user_record
from privacy.services.requests import Action, PrivacyRequestError, Status

Kind = PrivacyRequest.Kind


def _require_open(request: PrivacyRequest) -> None:
    if not request.is_open:
        raise PrivacyRequestError("closed", f"This request is already {request.get_status_display().lower()}.")


def _require_reason(reason: str, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({field: "Give a reason: the requester is told it."})
    return reason


@in_request_context
@transaction.atomic
def request_assign(*, request_id, officer: User, actor: User) -> PrivacyRequest:
    request = request_locked(request_id)
    _require_open(request)
    if not is_privacy_officer(officer):
        raise ValidationError({"officer": "Only a privacy officer can be assigned."})
    request.assigned_to = officer
    request.save(update_fields=["assigned_to", "updated_at"])
    history_add(request, Action.ASSIGNED, actor=actor, note=f"Assigned to {officer.full_name or officer.email}")
    history_audit(request, "assigned", Actor.staff(actor), officer=str(officer.pk))
    return request


@in_request_context
@transaction.atomic
def request_note_add(*, request_id, actor: User, note: str) -> PrivacyRequest:
    request = request_locked(request_id)
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": "Write a note."})
    history_add(request, Action.NOTE, actor=actor, note=note)
    history_audit(request, "noted", Actor.staff(actor))
    return request


@in_request_context
def request_authorization_record(*, request_id, actor: User, note: str, document=None) -> PrivacyRequest:
    """The written authorisation of someone acting on the subject's behalf has been received and checked:
    the document itself is kept (encrypted, privacy.services.authorizations) with the officer's note.
    Without a new ``document``, the officer confirms the one the agent uploaded with the public form.
    Nothing is kept when anything is refused."""
    stored = None
    try:
        with transaction.atomic():
            request = request_locked(request_id)
            if not request.on_behalf:
                raise PrivacyRequestError("not_on_behalf", "This request is not made on someone else's behalf.")
            note = _require_reason(note, "note")
            if document is not None:
                checked = stored = authorization_document_store(request=request, upload=document, actor=actor)
            else:
                checked = request.authorization_documents.order_by("-created_at").first()
                if checked is None:
                    raise ValidationError({"document": "Attach the signed authorisation: none is on file yet."})
            request.authorization_received_at = timezone.now()
            request.save(update_fields=["authorization_received_at", "updated_at"])
            history_add(request, Action.AUTHORIZATION, actor=actor, note=note)
            history_audit(request, "authorization_recorded", Actor.staff(actor), document=str(checked.pk),
                          sha256=checked.sha256)
    except BaseException:
        authorization_document_discard(stored)
        raise
    return request


@in_request_context
@transaction.atomic
def request_approve(*, request_id, actor: User, note: str = "") -> PrivacyRequest:
    """Approve a verified request. An unverified one, or one on behalf of someone without their
    authorisation on file, cannot be approved."""
    request = request_locked(request_id)
    _require_open(request)
    if not request.is_verified:
        raise PrivacyRequestError("unverified", "Verify the requester's identity before approving.")
    if request.on_behalf and request.authorization_received_at is None:
        raise PrivacyRequestError("authorization_missing", "Record the subject's written authorisation first.")
    if request.status == Status.APPROVED:
        raise PrivacyRequestError("already_approved", "This request is already approved.")
    if request.kind == Kind.PORTABILITY and request.organization_id is None:
        raise PrivacyRequestError("organization_missing", "A portability export needs the organisation it covers.")
    request.status, request.decided_at = Status.APPROVED, timezone.now()
    request.save(update_fields=["status", "decided_at", "updated_at"])
    history_add(request, Action.APPROVED, actor=actor, note=(note or "").strip())
    history_audit(request, "approved", Actor.staff(actor))
    requester = requester_account(request) if request.kind == Kind.OPT_OUT else None
    if requester is not None:
        opt_out_user_record(user=requester, method=OptOutMethod.REQUEST, actor=Actor.staff(actor))
    if request.kind == Kind.DELETION:
        erasure.erasure_schedule(request=request, actor=Actor.staff(actor))
    request_email_send(request=request, template="approved")
    if request.kind in (Kind.ACCESS, Kind.PORTABILITY):
        exports.export_queue(request=request, enqueue=exports.enqueue_build)
    return request


@in_request_context
@transaction.atomic
def request_deny(*, request_id, actor: User, reason: str) -> PrivacyRequest:
    request = request_locked(request_id)
    _require_open(request)
    reason = _require_reason(reason)
    request.status, request.decided_at, request.decision_reason = Status.DENIED, timezone.now(), reason
    request.save(update_fields=["status", "decided_at", "decision_reason", "updated_at"])
    history_add(request, Action.DENIED, actor=actor, note=reason)
    history_audit(request, "denied", Actor.staff(actor))
    request_email_send(request=request, template="denied")
    return request


@in_request_context
@transaction.atomic
def request_extend(*, request_id, actor: User, reason: str) -> PrivacyRequest:
    """Extend once, within the first period, with a reason the requester is told (GDPR Art. 12(3),
    CCPA §7021(b)). Opt-outs cannot be extended."""
    request = request_locked(request_id)
    _require_open(request)
    reason = _require_reason(reason)
    dates = deadlines.Deadlines(ack_due=request.ack_due, response_due=request.response_due,
                                extended_due=request.extended_due, extend_by=request.extend_by,
                                extendable=request.extendable)
    refusal = deadlines.can_extend(dates, today=timezone.now().date(), already_extended=request.extended_at is not None)
    if refusal:
        raise PrivacyRequestError("extension_refused", refusal)
    previous = request.due_date
    request.extended_at, request.extension_reason, request.due_date = timezone.now(), reason, request.extended_due
    request.save(update_fields=["extended_at", "extension_reason", "due_date", "updated_at"])
    change = f"{previous:%Y-%m-%d} → {request.due_date:%Y-%m-%d}: {reason}"
    history_add(request, Action.EXTENDED, actor=actor, note=change)
    history_audit(request, "extended", Actor.staff(actor), due_date=request.due_date.isoformat())
    request_email_send(request=request, template="extended", context={"previous_due": previous})
    return request


@in_request_context
@transaction.atomic
def request_complete(*, request_id, actor: User, note: str) -> PrivacyRequest:
    """Close an approved request, saying what was done (the requester receives the note)."""
    request = request_locked(request_id)
    if request.status != Status.APPROVED:
        raise PrivacyRequestError("not_approved", "Only an approved request can be completed.")
    note = _require_reason(note, "note")
    request.status, request.completed_at = Status.COMPLETED, timezone.now()
    request.save(update_fields=["status", "completed_at", "updated_at"])
    history_add(request, Action.COMPLETED, actor=actor, note=note)
    history_audit(request, "completed", Actor.staff(actor))
    request_email_send(request=request, template="completed", context={"note": note})
    return request
