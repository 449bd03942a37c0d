"""Invitation services: invite someone by email, resend, revoke, and accept with the emailed link.

The link carries a random secret, signed so that a tampered token is rejected before
any database lookup; only the secret's SHA-256 is stored. Acceptance locks the
invitation row, so one link makes at most one membership.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.audit import Actor, audit_record
from core.crypto import blind_index
from core.tenancy import bound_to_default_alias, tenant_context, unscoped_no_tenant

from .models import EMAIL_INDEX, ApiKey, Invitation, Membership, Organization, User
from .team import TeamError, audit_actor, ensure_can_grant, membership_add

INVITATION_TTL = timedelta(days=7)
_SIGNER_SALT = "accounts.invitation"


class InvitationError(Exception):
    """The invitation cannot be used; ``message`` says why, in words for the person holding the link."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _signer() -> signing.Signer:
    return signing.Signer(salt=_SIGNER_SALT, sep=".")


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_token() -> tuple[str, str]:
    """The token for the link and the hash to store."""
    secret = secrets.token_urlsafe(32)
    return _signer().sign(secret), _hash_secret(secret)


def _token_hash(token: str) -> str:
    try:
        secret = _signer().unsign(token or "")
    except signing.BadSignature as exc:
        raise InvitationError("This invitation link is not valid. Ask for a new invitation.") from exc
    return _hash_secret(secret)


def invitation_url(token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("accounts:invitation_accept", kwargs={"token": token})


def _send_invitation_email(*, invitation: Invitation, token: str) -> None:
    organization = invitation.organization
    context = {
        "organization_name": organization.display_name,
        "role": invitation.get_role_display(),
        "url": invitation_url(token),
        "expires_at": invitation.expires_at,
    }
    recipient = invitation.email
    # Sent after commit: a rolled-back invitation must not leave a working link in someone's inbox.
    transaction.on_commit(
        lambda: send_mail(
            subject=f"You are invited to {organization.display_name} on the Cloud Licenses Portal",
            message=render_to_string("team/email/invitation.txt", context),
            from_email=None,
            recipient_list=[recipient],
        )
    )


@transaction.atomic
def invitation_create(*, organization: Organization, email: str, role: str, actor: User | ApiKey) -> Invitation:
    """Invite ``email`` to ``organization`` with ``role`` and send the link.

    Inviting an owner needs a recent second-factor check; the calling view enforces it.
    """
    email = (email or "").strip()
    # The organisation's memberships, and the organisation itself (validating the invitation), have row-level
    # security: read inside its context, as everything after.
    with tenant_context(organization):
        try:
            ensure_can_grant(actor=actor, organization=organization, role=role)
        except TeamError as exc:
            raise ValidationError({"role": exc.message}) from exc
        index = blind_index(EMAIL_INDEX, email)
        if Membership.objects.filter(organization=organization, user__email_index=index).exists():
            raise ValidationError({"email": "This person is already a member of the organisation."})
        token, token_hash = _new_token()
        invitation = Invitation(
            organization=organization,
            email=email,
            role=role,
            invited_by=actor if isinstance(actor, User) else None,
            token_hash=token_hash,
            expires_at=timezone.now() + INVITATION_TTL,
        )
        invitation.full_clean(exclude=["email_index"])
        open_invitations = Invitation.objects.filter(email_index=index, accepted_at=None, revoked_at=None)
        # An expired invitation still holds the one-open-invitation slot; retire it so a new one can be sent.
        open_invitations.filter(expires_at__lte=timezone.now()).update(revoked_at=timezone.now())
        if open_invitations.exists():
            raise ValidationError({"email": "This person already has a pending invitation. Resend it instead."})
        try:
            with transaction.atomic():
                invitation.save()
        except IntegrityError as exc:
            raise ValidationError(
                {"email": "This person already has a pending invitation. Resend it instead."}
            ) from exc
        audit_record(
            actor=audit_actor(actor),
            action="invitation.created",
            organization=organization,
            target=invitation,
            metadata={"role": role},
        )
        _send_invitation_email(invitation=invitation, token=token)
    return invitation


def _locked_invitation(organization: Organization, invitation_id) -> Invitation:
    invitation = Invitation.objects.for_org(organization).select_for_update().filter(pk=invitation_id).first()
    if invitation is None:
        raise Invitation.DoesNotExist("No such invitation.")
    return invitation


@transaction.atomic
def invitation_resend(*, organization: Organization, invitation_id, actor: User | ApiKey) -> Invitation:
    """Send a fresh link (the old one stops working) and restart the seven days."""
    with tenant_context(organization):
        invitation = _locked_invitation(organization, invitation_id)
        if invitation.accepted_at is not None or invitation.revoked_at is not None:
            raise ValidationError("Only a pending invitation can be resent.")
        try:
            ensure_can_grant(actor=actor, organization=organization, role=invitation.role)
        except TeamError as exc:
            raise ValidationError(exc.message) from exc
        token, invitation.token_hash = _new_token()
        invitation.expires_at = timezone.now() + INVITATION_TTL
        invitation.save(update_fields=["token_hash", "expires_at", "updated_at"])
        audit_record(actor=audit_actor(actor), action="invitation.resent", organization=organization, target=invitation)
        _send_invitation_email(invitation=invitation, token=token)
    return invitation


@transaction.atomic
def invitation_revoke(*, organization: Organization, invitation_id, actor: User | ApiKey) -> Invitation:
    with tenant_context(organization):
        invitation = _locked_invitation(organization, invitation_id)
        if invitation.accepted_at is not None:
            raise ValidationError("This invitation was already accepted. Remove the member instead.")
        if invitation.revoked_at is not None:
            return invitation
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            actor=audit_actor(actor), action="invitation.revoked", organization=organization, target=invitation
        )
    return invitation


def _check_usable(invitation: Invitation) -> None:
    if invitation.accepted_at is not None:
        raise InvitationError("This invitation has already been used.")
    if invitation.revoked_at is not None:
        raise InvitationError("This invitation was withdrawn. Ask the organisation for a new one.")
    if invitation.expires_at <= timezone.now():
        raise InvitationError("This invitation has expired. Ask the organisation to send it again.")
    if invitation.organization.status != Organization.Status.ACTIVE:
        raise InvitationError("This organisation is no longer active.")


def invitation_from_token(token: str) -> Invitation:
    """The pending invitation behind a link, for showing who invited whom before accepting."""
    token_hash = _token_hash(token)
    # The token decides the tenant, so this lookup cannot be tenant-scoped yet.
    with unscoped_no_tenant():
        invitation = Invitation.unscoped_objects.select_related("organization").filter(token_hash=token_hash).first()
    if invitation is None:
        raise InvitationError("This invitation link is not valid. Ask for a new invitation.")
    _check_usable(invitation)
    return bound_to_default_alias([invitation])[0]


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """Join the organisation. The signed-in user's email must be the invited one."""
    token_hash = _token_hash(token)
    # The token decides the tenant: found as the system role (docs/decisions/025), then locked and
    # checked again inside the tenant, on this transaction's connection, so two accepts serialise.
    with unscoped_no_tenant():
        found = Invitation.unscoped_objects.filter(token_hash=token_hash).values_list("organization_id", "pk").first()
    if found is None:
        raise InvitationError("This invitation link is not valid. Ask for a new invitation.")
    organization_id, invitation_id = found
    with tenant_context(organization_id):
        invitation = Invitation.objects.select_for_update().select_related("organization").get(pk=invitation_id)
        _check_usable(invitation)
        if not user.email_index or user.email_index != invitation.email_index:
            raise InvitationError(
                "This invitation was sent to a different email address. Sign in with that address to accept it."
            )
        organization = invitation.organization
        membership = Membership.objects.filter(organization=organization, user=user).first()
        if membership is None:
            membership = membership_add(organization=organization, user=user, role=invitation.role, via="invitation")
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
        audit_record(actor=Actor.user(user), action="invitation.accepted", organization=organization, target=invitation)
    return membership
