"""Reads for account and team pages. Every query is scoped to its user or its organisation."""

from __future__ import annotations

import uuid
from contextlib import suppress

from django.db.models import QuerySet
from django.utils import timezone
from django_otp.models import Device
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import SignInEvent
from core.crypto import blind_index
from core.tenancy import bound_to_default_alias, person_context, tenant_context, unscoped_no_tenant

from .models import (
    ORGANIZATION_SLUG_INDEX,
    ApiKey,
    Invitation,
    Membership,
    Organization,
    RecoveryCodeDevice,
    StaffGrant,
    TOTPDevice,
    User,
    UserSession,
)


def members_of(organization_ids) -> list:
    """The ids of the people who are members of any of these organisations."""
    members = Membership.objects.filter(organization_id__in=list(organization_ids))
    return list(members.values_list("user_id", flat=True).distinct())


def members_of_granted(organization_ids) -> list:
    """``members_of``, read in those organisations' own tenant context: for the staff admin's grant scope, which
    opens the person context of the granted organisations' members before the view's tenant context is open.
    Memberships have row-level security (decision 044): outside a context the application role finds nobody."""
    ids = list(organization_ids)
    if not ids:
        return []
    with tenant_context(*ids):
        return members_of(ids)


def sign_in_events_for_user(user: User) -> QuerySet[SignInEvent]:
    return SignInEvent.objects.filter(user=user).order_by("-occurred_at", "-id")


# Tracked sessions, second-factor devices and passkeys have row-level security per person (decision 035): each
# read below runs in the person's own context and returns a list, read there, not a lazy queryset that a
# template would evaluate after the context has closed.


def user_sessions_for_user(user: User) -> list[UserSession]:
    with person_context(user):
        return list(UserSession.objects.filter(user=user).order_by("-last_seen_at"))


def user_session_for_user(user: User, session_id) -> UserSession | None:
    """One of the user's tracked sessions by id; None when it is not theirs, gone, or not an id at all."""
    try:
        session_id = uuid.UUID(str(session_id))
    except ValueError:
        return None
    with person_context(user):
        return UserSession.objects.filter(user=user, pk=session_id).first()


def totp_devices_for_user(user: User) -> list[TOTPDevice]:
    with person_context(user):
        return list(TOTPDevice.objects.filter(user=user, confirmed=True).order_by("created_at"))


def passkeys_for_user(user: User) -> list[WebAuthnCredential]:
    with person_context(user):
        return list(WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at"))


def recovery_codes_remaining(user: User) -> int | None:
    """How many unused recovery codes the user has, or None if they never had any."""
    with person_context(user):
        device = RecoveryCodeDevice.objects.filter(user=user, confirmed=True).only("code_hashes").first()
    return None if device is None else device.remaining


def session_device(user: User, persistent_id: str) -> Device | None:
    """The second-factor device this session was verified with, if it is still the user's and confirmed.

    Read by django-otp's middleware on every signed-in request (``accounts.middleware.OTPMiddleware``),
    outside any transaction: there row-level security per person would show nothing, and opening a
    transaction to set ``app.user_ids`` would cost three round trips on every page. So this one read runs
    as the system role, in autocommit (one statement, as before), keyed by the device id the session
    itself holds and bound to the session's user: it can return no one else's device
    (docs/decisions/035-row-level-security-on-sessions-and-devices.md).
    """
    if not persistent_id or not user.is_authenticated:
        return None
    # Legacy ids were full import paths (django-otp's _normalize_persistent_id).
    if persistent_id.count(".") > 1:
        parts = persistent_id.split(".")
        persistent_id = ".".join((parts[-3], parts[-1]))
    with suppress(ValueError, LookupError):
        devices = Device._filter_persistent_id(persistent_id)
        if devices is not None:
            with unscoped_no_tenant(atomic=False):
                return devices.filter(user_id=user.pk, confirmed=True).first()
    return None


# Users have row-level security (decision 043): the person themself, fellow members of the organisations in
# scope and staff. The two reads below come before anyone is in scope, so they run as the system role, one
# autocommit statement each, and hand back an instance bound to the default alias: whatever later reads its
# relations, refreshes or saves it does so as the application role, under row-level security.


def user_by_session_or_link_id(user_id) -> User | None:
    """The user a sign-in waiting for its second factor names, or a password-reset link names (whose token is
    then checked against this user's password hash and last sign-in). A signed-in session's user is read with
    their memberships (:func:`signed_in_user`).

    Keyed by that id alone: it returns that person or nobody. As the system role, because no context is set
    before the request knows who is asking (decision 043). Anything that is not a user id finds nobody.
    """
    try:
        user_id = uuid.UUID(str(user_id))
    except ValueError:
        return None
    with unscoped_no_tenant(atomic=False):
        return bound_to_default_alias([User.objects.filter(pk=user_id).first()])[0]


def signed_in_user(user_id) -> User | None:
    """The user a session names, with their memberships in active organisations (the organisation loaded), in
    one statement where reading them apart took two on every signed-in page.

    Read as the system role before any context exists (decision 043), keyed by the session's own user id, in the
    order of :func:`memberships_for_user`. The memberships ride on the user as ``memberships_at_sign_in`` for
    :func:`memberships_of_request_user`, which hands them once to whatever resolves the request's organisation
    first (the organisation middleware, or the session-authenticated API); every other reader calls
    :func:`memberships_for_user`, which reads them afresh. Someone who belongs to
    no active organisation (staff, a new account) is read on their own, the second statement as before.
    """
    try:
        user_id = uuid.UUID(str(user_id))
    except ValueError:
        return None
    with unscoped_no_tenant(atomic=False):
        memberships = list(_active_memberships(user_id).select_related("user"))
        user = memberships[0].user if memberships else User.objects.filter(pk=user_id).first()
    if user is None:
        return None
    for membership in memberships:
        membership.user = user
    bound_to_default_alias([user, *memberships])
    user.memberships_at_sign_in = memberships
    return user


def memberships_of_request_user(user: User) -> list[Membership]:
    """The memberships :func:`signed_in_user` read with the request's user, taken once (a second call reads
    them afresh, as does a user loaded any other way)."""
    memberships = getattr(user, "memberships_at_sign_in", None)  # ``user`` may be the request's lazy proxy
    if memberships is None:
        return memberships_for_user(user)
    del user.memberships_at_sign_in
    return memberships


def user_by_email(email: str) -> User | None:
    """The account with this e-mail address, by its blind index, before anyone is signed in: sign-in and its
    failed attempts, password reset, sign-up and invitation acceptance, privacy requests by e-mail. As the
    system role (decision 043). Reads committed rows only (the system role's own connection)."""
    if not email:
        return None
    with unscoped_no_tenant(atomic=False):
        return bound_to_default_alias([User.objects.get_by_email(email)])[0]


def memberships_for_user(user: User) -> list[Membership]:
    """The user's memberships in active organisations, with the organisation loaded, read before any
    organisation is in scope (the middleware resolving ``/o/<slug>/``, the switcher, the home page, the
    session-authenticated API).

    Memberships and organisations have row-level security (decision 044), and no tenant is known yet: so this
    one statement runs as the system role, in autocommit, keyed by the signed-in user, as
    :func:`session_device` is by the session's device; it can return no one else's membership. Ordered by the
    organisation's slug, a stable order: the names are encrypted and cannot be sorted in SQL (the switcher
    sorts by name in Python)."""
    with unscoped_no_tenant(atomic=False):
        memberships = list(_active_memberships(user))
    return bound_to_default_alias(memberships)


def _active_memberships(user) -> QuerySet[Membership]:
    """A person's (or a user id's) memberships in active organisations, the organisation loaded, by its slug."""
    return Membership.objects.for_user(user).select_related("organization").order_by("organization__slug")


def membership_for_slug(user: User, slug: str) -> Membership | None:
    """The one way a request resolves its organisation: the user's membership there, or None. The memberships read
    with the request's user when they are still there (:func:`memberships_of_request_user`)."""
    return next((m for m in memberships_of_request_user(user) if m.organization.slug == slug), None)


def memberships_and_current(user: User, slug: str) -> tuple[list[Membership], Membership | None]:
    """The request user's memberships (the organisation switcher's list, in its order) and the one at ``slug``,
    as :func:`membership_for_slug` resolves it: read with the user (:func:`memberships_of_request_user`), where
    asking for each would make two more statements on every page."""
    memberships = memberships_of_request_user(user)
    return memberships, next((m for m in memberships if m.organization.slug == slug), None)


def membership_by_previous_slug(memberships, slug: str) -> Membership | None:
    """Among ``memberships`` (loaded with their organisations), the one whose organisation had ``slug``
    before slugs were made neutral (decision 041): no query, and never another person's organisation."""
    index = blind_index(ORGANIZATION_SLUG_INDEX, slug)
    return next((m for m in memberships if m.organization.previous_slug_index == index), None)


def display_organization(user: User, current_slug: str | None, memberships=None) -> Organization | None:
    """Whose time zone a page outside an organisation uses: the one last worked in, else the first. Among
    ``memberships`` when the request has them already (:func:`memberships_for_user`'s list), else read."""
    memberships = memberships_for_user(user) if memberships is None else memberships
    membership = next((m for m in memberships if current_slug and m.organization.slug == current_slug), None) or (
        memberships[0] if memberships else None
    )
    return membership.organization if membership else None


def organizations_across_tenants(*, active_only: bool = False, exclude=()) -> list[Organization]:
    """Every organisation (or every active one), but those in ``exclude``, in a stable order: for the periodic
    sweeps that then work on each inside its own tenant context (billing, tallies, retention, fan-outs).

    A read across organisations, before any is in scope: as the system role (decision 044), one statement. The
    rows are handed back bound to the default alias, so what the sweep writes is written as the application
    role, under row-level security."""
    organizations = Organization.objects.exclude(pk__in=list(exclude)).order_by("pk")
    if active_only:
        organizations = organizations.filter(status=Organization.Status.ACTIVE)
    with unscoped_no_tenant(atomic=False):
        return bound_to_default_alias(list(organizations))


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


def effective_staff_grants(user: User, now=None) -> list[StaffGrant]:
    """The staff member's grants in force right now (active, started, not expired), read fresh: a grant
    past its expiry gives nothing even before the periodic task marks it expired. Ordinary grants
    come before break-glass ones, so an ordinary grant is the one named in the audit chain.

    The admin's grant check, before any organisation is in scope: grants have row-level security (decision
    044), so this one statement runs as the system role, in autocommit, keyed by the signed-in staff member;
    it can return no one else's grant."""
    now = now or timezone.now()
    with unscoped_no_tenant(atomic=False):
        grants = list(
            StaffGrant.objects.filter(
                staff=user, status=StaffGrant.Status.ACTIVE, starts_at__lte=now, expires_at__gt=now
            )
            .order_by("break_glass", "-expires_at")
            # Only what the check needs: the justification is encrypted, and decrypting it on every admin
            # request would cost more than the rest of the check.
            .only("id", "organization_id", "staff_id", "roles", "status", "starts_at", "expires_at", "break_glass")
        )
    return bound_to_default_alias(grants)


def staff_grants_of_organization(organization: Organization) -> QuerySet[StaffGrant]:
    """Every grant to the organisation, newest first, for its Reseller access page."""
    return StaffGrant.objects.filter(organization=organization).select_related("staff", "approved_by", "ended_by")
