"""Privacy requests: intake (portal, public form, staff), verification, and the officer's decisions.

Every function is keyword-only, transactional, validates before saving, writes a history event and
an audit event naming the actor, and emails the requester at each step (``notices.py``). The clock
starts when the request is received, whatever verification takes (CCPA §7021(b)).
"""

from __future__ import annotations

import datetime
import secrets
import uuid

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import memberships_for_user
from core.audit import Actor, audit_record
from core.crypto import blind_index
from core.tenancy import person_context, privacy_request_context
from core.timezones import organization_zone
from privacy import deadlines, verification
from privacy.models import MAX_CODE_FAILURES, AuthorizationDocument, OptOutMethod, PrivacyRequest, PrivacyRequestEvent
from privacy.selectors import request_record_rows, requester_account
from privacy.services.authorizations import authorization_document_discard, authorization_document_store
from privacy.services.history import history_add, history_audit, in_request_context, request_locked
from privacy.services.notices import request_email_send
from privacy.services.optouts import opt_out_user_record

Kind, Status, Channel, Region = (
    PrivacyRequest.Kind,
    PrivacyRequest.Status,
    PrivacyRequest.Channel,
    PrivacyRequest.Region,
)
Action = PrivacyRequestEvent.Action

REGIMES_BY_REGION = {
    Region.EU_UK: [deadlines.Regime.GDPR],
    Region.US_CA: [deadlines.Regime.CCPA],
    # Unknown residence: hold ourselves to both, so the earliest dates apply.
    Region.OTHER: [deadlines.Regime.GDPR, deadlines.Regime.CCPA],
}
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MAX_CODES_SENT = 5


class PrivacyRequestError(Exception):
    """A refused step, with a stable code for the API and a sentence for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _reference() -> str:
    body = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))
    return f"PR-{body[:4]}-{body[4:]}"


def _received_date(received_at: datetime.datetime, organization) -> datetime.date:
    zone = organization_zone(organization) if organization is not None else datetime.UTC
    return received_at.astimezone(zone).date()


def _build(*, request_id: uuid.UUID, kind: str, channel: str, region: str, email: str, name: str, details: str,
           received_at: datetime.datetime, requester: User | None = None, organization=None,
           on_behalf: bool = False, agent_name: str = "", subject_email: str = "") -> PrivacyRequest:
    if kind not in Kind.values:
        raise ValidationError({"kind": "Choose a type of request."})
    if region not in Region.values:
        raise ValidationError({"region": "Choose where you live."})
    email = User.objects.normalize_email((email or "").strip())
    validate_email(email)
    if on_behalf and not agent_name.strip():
        raise ValidationError({"agent_name": "Name the person you act for."})
    subject_email = User.objects.normalize_email((subject_email or "").strip()) if on_behalf else ""
    if on_behalf:
        if not subject_email:
            raise ValidationError({"subject_email": "Give the email address of the person you act for: we look "
                                                    "for their information under it, not yours."})
        try:
            validate_email(subject_email)
        except ValidationError as invalid:
            raise ValidationError({"subject_email": invalid.messages}) from invalid
    if received_at > timezone.now():
        raise ValidationError({"received_at": "The date received cannot be in the future."})
    regimes = REGIMES_BY_REGION[region]
    dates = deadlines.effective(regimes, _received_date(received_at, organization), opt_out=kind == Kind.OPT_OUT)
    request = PrivacyRequest(
        id=request_id, reference=_reference(), kind=kind, channel=channel, region=region,
        regimes=[str(r) for r in regimes],
        requester=requester, organization=organization, requester_email=email, requester_name=name.strip(),
        details=details.strip(), on_behalf=on_behalf, agent_name=agent_name.strip(), subject_email=subject_email,
        received_at=received_at,
        ack_due=dates.ack_due, response_due=dates.response_due, extended_due=dates.extended_due,
        extend_by=dates.extend_by, extendable=dates.extendable, due_date=dates.response_due,
    )
    # The person is an instance in hand, whose row row-level security may not show here (decision 043).
    request.full_clean(exclude=["requester_email_index", "requester"])
    request.save()
    return request


def _acknowledge(request: PrivacyRequest) -> None:
    request.acknowledged_at = timezone.now()
    request.save(update_fields=["acknowledged_at", "updated_at"])
    history_add(request, Action.ACKNOWLEDGED)
    request_email_send(request=request, template="acknowledged")


# --- intake ------------------------------------------------------------------------------------


def request_submit_portal(*, user: User, kind: str, region: str, details: str = "", organization=None,
                          recent_mfa: bool) -> PrivacyRequest:
    """A signed-in person asks about their own data. Their session with a recent second factor is the
    verification (CCPA §7061(a): re-authentication before disclosing, deleting or correcting). Written in the
    person's own context, where row-level security shows their requests (decision 048)."""
    with person_context(user):
        return _submit_portal(user=user, kind=kind, region=region, details=details, organization=organization,
                              recent_mfa=recent_mfa)


def _submit_portal(*, user: User, kind: str, region: str, details: str, organization, recent_mfa: bool
                   ) -> PrivacyRequest:
    if not recent_mfa:
        raise PrivacyRequestError("reauthentication_required", "Confirm your second factor again to make a request.")
    if organization is not None and all(m.organization_id != organization.pk for m in memberships_for_user(user)):
        raise PrivacyRequestError("not_a_member", "You can only make requests about organisations you belong to.")
    now = timezone.now()
    request = _build(request_id=uuid.uuid4(), kind=kind, channel=Channel.PORTAL, region=region, email=user.email,
                     name=user.full_name, details=details, received_at=now, requester=user, organization=organization)
    request.status, request.verified_at = Status.OPEN, now
    request.verification = PrivacyRequest.Verification.MFA_SESSION
    request.save(update_fields=["status", "verified_at", "verification", "updated_at"])
    history_add(request, Action.RECEIVED, actor=user, label="requester")
    history_add(request, Action.VERIFIED, actor=user, label="requester", note="Signed-in session with recent MFA")
    history_audit(request, "received", Actor.user(user), channel=Channel.PORTAL)
    _acknowledge(request)
    _opt_out_at_once(request, actor=Actor.user(user))
    return request


def request_submit_public(*, email: str, name: str, kind: str, region: str, details: str = "",
                          on_behalf: bool = False, agent_name: str = "", subject_email: str = "",
                          authorization=None) -> PrivacyRequest:
    """Someone without an account (a directory user, a former contact) asks. Nothing is done until
    they enter the code emailed to the address, so a stranger cannot act on someone else's data.

    An authorised agent may attach the person's signed authorisation (``authorization``, an uploaded
    file): it is kept like one the officer files, and the officer still checks it and records the
    authorisation before approving. Nothing is kept when anything is refused: no request, no file.
    """
    if authorization is not None and not on_behalf:
        raise ValidationError({"document": "Attach an authorisation only when you act on someone else's behalf."})
    stored = None
    request_id = uuid.uuid4()
    try:
        # In the new request's own context (decision 048): nothing else shows a request of no account.
        with privacy_request_context(request_id):
            actor = Actor.system("privacy.public_form")
            request = _build(request_id=request_id, kind=kind, channel=Channel.PUBLIC_FORM, region=region,
                             email=email, name=name, details=details, received_at=timezone.now(),
                             on_behalf=on_behalf, agent_name=agent_name, subject_email=subject_email)
            history_add(request, Action.RECEIVED, label="requester")
            history_audit(request, "received", actor, channel=Channel.PUBLIC_FORM)
            if authorization is not None:
                stored = authorization_document_store(request=request, upload=authorization, actor=None,
                                                      source=AuthorizationDocument.Source.AGENT_FORM)
                history_add(request, Action.AUTHORIZATION, label="requester",
                            note="Uploaded by the agent with the request form; not yet checked by the officer")
                history_audit(request, "authorization_uploaded", actor, document=str(stored.pk),
                              sha256=stored.sha256)
            return request_code_send(request_id=request.pk)
    except BaseException:
        authorization_document_discard(stored)
        raise


def request_submit_staff(*, actor: User, email: str, name: str, kind: str, region: str, details: str,
                         received_at: datetime.datetime, on_behalf: bool = False, agent_name: str = "",
                         subject_email: str = "",
                         organization=None) -> PrivacyRequest:
    """The officer enters a request received by email or post, dated when it arrived; it is
    acknowledged at once and verified separately (:func:`request_verify_by_officer`). Written in the new
    request's own context (decision 048)."""
    request_id = uuid.uuid4()
    with privacy_request_context(request_id):
        return _submit_staff(request_id=request_id, actor=actor, email=email, name=name, kind=kind, region=region,
                             details=details, received_at=received_at, on_behalf=on_behalf, agent_name=agent_name,
                             subject_email=subject_email, organization=organization)


def _submit_staff(*, request_id: uuid.UUID, actor: User, email: str, name: str, kind: str, region: str, details: str,
                  received_at: datetime.datetime, on_behalf: bool, agent_name: str, subject_email: str,
                  organization) -> PrivacyRequest:
    request = _build(request_id=request_id, kind=kind, channel=Channel.STAFF, region=region, email=email, name=name,
                     details=details, received_at=received_at, on_behalf=on_behalf, agent_name=agent_name,
                     subject_email=subject_email, organization=organization)
    history_add(request, Action.RECEIVED, actor=actor, note=f"Entered by staff, received {received_at:%Y-%m-%d}")
    history_audit(request, "received", Actor.staff(actor), channel=Channel.STAFF)
    _acknowledge(request)
    return request


# --- verification ------------------------------------------------------------------------------


@in_request_context
@transaction.atomic
def request_code_send(*, request_id) -> PrivacyRequest:
    """(Re)send a fresh code. Refused once verified or locked."""
    request = request_locked(request_id)
    if request.is_verified:
        raise PrivacyRequestError("already_verified", "This request is already verified.")
    if request.verification_locked:
        raise PrivacyRequestError("locked", "Too many wrong codes. Our privacy officer will contact you.")
    if request.events.filter(action=Action.CODE_SENT).count() >= MAX_CODES_SENT:
        raise PrivacyRequestError("too_many_codes", "We have sent enough codes for this request; use the last one.")
    code = verification.new_code()
    request.code_hash = verification.code_hash(request.pk, code)
    request.code_expires_at = timezone.now() + verification.CODE_TTL
    request.save(update_fields=["code_hash", "code_expires_at", "updated_at"])
    history_add(request, Action.CODE_SENT)
    request_email_send(request=request, template="code", context={"code": code})
    return request


def request_verify_code(*, request_id, code: str) -> PrivacyRequest:
    """Check the emailed code. A wrong or expired code counts as a failure (kept even when the
    caller's transaction is rolled back); the fourth failure locks the request."""
    # A failure is recorded inside the block and the refusal raised after it, so the count is kept.
    with privacy_request_context(request_id):
        request = request_locked(request_id)
        if request.is_verified:
            return request
        if request.verification_locked:
            raise PrivacyRequestError("locked", "Too many wrong codes. Our privacy officer will contact you.")
        if verification.code_expired(request) or not verification.code_matches(request, code):
            request.code_failures += 1
            request.save(update_fields=["code_failures", "updated_at"])
            history_add(request, Action.CODE_FAILED)
            failed = request
        else:
            failed = None
            request.status, request.verified_at = Status.OPEN, timezone.now()
            request.verification, request.code_hash = PrivacyRequest.Verification.EMAIL_CODE, ""
            request.code_expires_at = None
            request.save(update_fields=["status", "verified_at", "verification", "code_hash", "code_expires_at",
                                        "updated_at"])
            history_add(request, Action.VERIFIED, label="requester", note="Email code")
            history_audit(request, "verified", Actor.system("privacy.public_form"), method="email_code")
            _acknowledge(request)
    if failed is not None:
        if failed.verification_locked:
            raise PrivacyRequestError("locked", "Too many wrong codes. Our privacy officer will contact you.")
        left = MAX_CODE_FAILURES - failed.code_failures
        raise PrivacyRequestError("wrong_code", f"That code is wrong or has expired. {left} tries left.")
    return request


@in_request_context
@transaction.atomic
def request_verify_by_officer(*, request_id, actor: User, method_note: str) -> PrivacyRequest:
    """The officer records how they verified the requester (for staff entries and locked requests)."""
    request = request_locked(request_id)
    if not method_note.strip():
        raise ValidationError({"note": "Say how the identity was verified."})
    if request.is_verified:
        raise PrivacyRequestError("already_verified", "This request is already verified.")
    request.status, request.verified_at = Status.OPEN, timezone.now()
    request.verification = PrivacyRequest.Verification.STAFF
    request.save(update_fields=["status", "verified_at", "verification", "updated_at"])
    history_add(request, Action.VERIFIED, actor=actor, note=method_note.strip())
    history_audit(request, "verified", Actor.staff(actor), method="staff")
    return request


def _opt_out_at_once(request: PrivacyRequest, *, actor: Actor) -> None:
    """An opt-out of sale/sharing needs no verification beyond the account (CCPA §7026): honour it now."""
    requester = requester_account(request) if request.kind == Kind.OPT_OUT else None
    if requester is None:
        return
    opt_out_user_record(user=requester, method=OptOutMethod.REQUEST, actor=actor)
    request.status, request.decided_at, request.completed_at = Status.COMPLETED, timezone.now(), timezone.now()
    request.save(update_fields=["status", "decided_at", "completed_at", "updated_at"])
    history_add(request, Action.COMPLETED, note="Opt-out recorded on the account and its organisations")
    request_email_send(request=request, template="completed",
                       context={"note": "You are opted out of the sale and sharing of your personal information."})


def request_records_export(*, actor: User):
    """The request records as CSV rows for the officer; audited (who took the records out, and when)."""
    audit_record(actor=Actor.staff(actor), action="privacy.request_records_exported")
    return request_record_rows()


PUBLIC_FORM_IP_INDEX = "privacy-public-form-ip"
PUBLIC_FORM_WINDOW = 3600


def public_form_admit(*, client_ip: str | None) -> bool:
    """Whether one more public request from this address is allowed this hour
    (``PRIVACY_PUBLIC_FORM_PER_IP_HOUR``). Counted in the shared cache under a keyed hash of the
    address (``core.crypto.blind_index``): no plaintext address is stored, and the count expires
    with its hour. Each call counts one submission."""
    key = f"{PUBLIC_FORM_IP_INDEX}:{blind_index(PUBLIC_FORM_IP_INDEX, client_ip or 'unknown')}"
    cache.add(key, 0, timeout=PUBLIC_FORM_WINDOW)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this is the first of a new hour
        cache.add(key, 1, timeout=PUBLIC_FORM_WINDOW)
        count = 1
    return count <= settings.PRIVACY_PUBLIC_FORM_PER_IP_HOUR
