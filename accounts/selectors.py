"""Reads for account and team pages. Every query is scoped to its user or its organisation."""

from __future__ import annotations

from django.db.models import QuerySet
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import SignInEvent

from .models import ApiKey, Invitation, Membership, Organization, RecoveryCodeDevice, TOTPDevice, User, UserSession


def sign_in_events_for_user(user: User) -> QuerySet[SignInEvent]:
    return SignInEvent.objects.filter(user=user).order_by("-occurred_at", "-id")


def user_sessions_for_user(user: User) -> QuerySet[UserSession]:
    return UserSession.objects.filter(user=user).order_by("-last_seen_at")


def totp_devices_for_user(user: User) -> QuerySet[TOTPDevice]:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("created_at")


def passkeys_for_user(user: User) -> QuerySet[WebAuthnCredential]:
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at")


def recovery_codes_remaining(user: User) -> int | None:
    """How many unused recovery codes the user has, or None if they never had any."""
    device = RecoveryCodeDevice.objects.filter(user=user, confirmed=True).only("code_hashes").first()
    return None if device is None else device.remaining


def memberships_for_user(user: User) -> QuerySet[Membership]:
    """The user's memberships in active organisations, with the organisation loaded.

    Ordered by the organisation's slug (made from its name at sign-up): the names themselves are
    encrypted and cannot be sorted in SQL."""
    return Membership.objects.for_user(user).select_related("organization").order_by("organization__slug")


def membership_for_slug(user: User, slug: str) -> Membership | None:
    """The one way a request resolves its organisation: the user's membership there, or None."""
    return memberships_for_user(user).filter(organization__slug=slug).first()


def display_organization(user: User, current_slug: str | None) -> Organization | None:
    """Whose time zone a page outside an organisation uses: the one last worked in, else the first."""
    memberships = memberships_for_user(user)
    membership = (memberships.filter(organization__slug=current_slug).first() if current_slug else None) or (
        memberships.first()
    )
    return membership.organization if membership else None


def members_of_organization(organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user").order_by("created_at")


def open_invitations(organization: Organization) -> QuerySet[Invitation]:
    """Invitations neither accepted nor withdrawn, newest first; expired ones stay listed so they can be resent."""
    return (
        Invitation.objects.for_org(organization)
        .filter(accepted_at=None, revoked_at=None)
        .select_related("invited_by")
        .order_by("-created_at")
    )


def invitation_of_organization(organization: Organization, invitation_id) -> Invitation | None:
    return Invitation.objects.for_org(organization).filter(pk=invitation_id).first()


def api_keys_of_organization(organization: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_org(organization).select_related("created_by").order_by("-created_at")
