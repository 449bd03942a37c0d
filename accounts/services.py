"""Account services: sign-up, organisations, email verification and profile changes.

Every function that changes state is transactional, validates with ``full_clean()``
and records an audit event in the same transaction.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.roles import Role
from core.audit import Actor, audit_record
from core.crypto import blind_index
from core.tenancy import person_context, tenant_context, unscoped_no_tenant

from .invitations import InvitationError, invitation_accept, invitation_from_token
from .models import EMAIL_INDEX, ORGANIZATION_SLUG_INDEX, Membership, Organization, User
from .org_settings import validate_time_zone
from .selectors import user_by_email
from .team import membership_add

EMAIL_VERIFICATION_SALT = "accounts.verify-email"
EMAIL_VERIFICATION_MAX_AGE = 60 * 60 * 24 * 3
SLUG_ATTEMPTS = 5
SLUG_ALPHABET = "bcdfghjkmnpqrstvwxz23456789"
SLUG_RANDOM_LENGTH = 8


class EmailVerificationError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _neutral_slug() -> str:
    """``org-`` and eight characters drawn at random from letters and digits without vowels (no words,
    nothing to misread: no 0/o, 1/i/l). Never made from the name: names are encrypted, and the slug is in
    plaintext in the database and in every URL (decision 041). 27^8, about 2.8e11, so a repeat is rare."""
    return "org-" + "".join(secrets.choice(SLUG_ALPHABET) for _ in range(SLUG_RANDOM_LENGTH))


def _slug_taken(slug: str) -> bool:
    """In use, or an organisation's slug before slugs were made neutral: old links to it must keep
    reaching that organisation, never another one.

    Every organisation's slugs, before the new one exists: a read across organisations, so as the system role
    (row-level security shows the application role none of them, decision 044). One statement."""
    with unscoped_no_tenant(atomic=False):
        return Organization.objects.filter(
            Q(slug=slug) | Q(previous_slug_index=blind_index(ORGANIZATION_SLUG_INDEX, slug))
        ).exists()


def _free_slug() -> str:
    """A neutral slug not taken yet (checked; the unique constraint still decides between racing inserts)."""
    for _ in range(SLUG_ATTEMPTS):
        slug = _neutral_slug()
        if not _slug_taken(slug):
            return slug
    return _neutral_slug()  # five repeats in a row: the insert's constraint has the last word


def _organization_insert(organization: Organization) -> None:
    """Save a new organisation under a free slug.

    Two sign-ups can draw the same slug and both find it free; the unique constraint decides, and the
    loser draws again inside its own savepoint, so the rest of its sign-up stands.
    """
    for _ in range(SLUG_ATTEMPTS):
        organization.slug = _free_slug()
        try:
            with transaction.atomic():
                organization.save()
            return
        except IntegrityError:
            if not _slug_taken(organization.slug):
                raise  # some other constraint failed: not ours to retry
    raise IntegrityError(f"No free organisation slug after {SLUG_ATTEMPTS} attempts.")


def _organization_build(*, legal_name: str, country: str, time_zone: str, business_name: str = "") -> Organization:
    """A validated, unsaved organisation; its slug is chosen when it is inserted."""
    validate_time_zone(time_zone)
    organization = Organization(
        legal_name=legal_name.strip(),
        business_name=business_name.strip(),
        country=country.strip().upper(),
        time_zone=time_zone,
    )
    organization.full_clean(exclude=["slug"])
    return organization


def _organization_create(*, actor: User, legal_name: str, country: str, time_zone: str, business_name: str = ""):
    organization = _organization_build(
        legal_name=legal_name, country=country, time_zone=time_zone, business_name=business_name
    )
    # Its id is drawn before the insert (decision 005), so the new organisation is the tenant its own rows are
    # written in: row-level security admits the organisation, its owner's membership and its audit events. The
    # owner is in scope too: validating the membership reads their user row before they are a member.
    with tenant_context(organization), person_context(actor):
        _organization_insert(organization)
        audit_record(
            actor=Actor.user(actor), action="organization.created", organization=organization, target=organization
        )
        membership_add(organization=organization, user=actor, role=Role.OWNER, via="signup")
    return organization


def privacy_notice_version_in_force() -> str:
    """The privacy notice version in force now, from the privacy app (a higher floor) via its dotted-path setting."""
    return import_string(settings.PRIVACY_NOTICE_CURRENT_VERSION)()


def user_create(*, email: str, password: str, full_name: str, email_verified: bool = False) -> User:
    """A new portal user. Refuses an email that is already registered and weak passwords.

    Records the privacy notice version in force, which the sign-up page links to.
    """
    email = User.objects.normalize_email(email.strip())
    if user_by_email(email) is not None:
        raise ValidationError({"email": "An account with this email already exists. Sign in or reset your password."})
    user = User(email=email, full_name=full_name.strip(), privacy_notice_version=privacy_notice_version_in_force())
    user.email_verified_at = timezone.now() if email_verified else None
    validate_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"], validate_unique=False)  # unique e-mail: checked above, as the system role
    # Users have row-level security (decision 043): a new account is written in its own person's context.
    with person_context(user):
        user.save()
        audit_record(
            actor=Actor.user(user),
            action="user.created",
            target=user,
            metadata={"privacy_notice_version": user.privacy_notice_version},
        )
    return user


@transaction.atomic
def organization_signup(
    *,
    email: str,
    password: str,
    full_name: str,
    legal_name: str,
    country: str,
    time_zone: str,
    business_name: str = "",
) -> tuple[User, Organization] | None:
    """Create an organisation and its owner together, then email the verification link after commit.

    Sign-up must not tell anyone whether an address is registered. For an address that already has
    an account nothing is created: its holder is emailed instead and the result is ``None``. Both
    paths validate the same input in the same order and hash the password once, so the caller can
    answer both the same way, in about the same time.
    """
    email = User.objects.normalize_email(email.strip())
    existing = user_by_email(email)
    if existing is None:
        user = user_create(email=email, password=password, full_name=full_name)
        organization = _organization_create(
            actor=user, legal_name=legal_name, country=country, time_zone=time_zone, business_name=business_name
        )
        email_verification_send(user=user)
        return user, organization
    validate_password(password, User(email=email, full_name=full_name.strip()))
    make_password(password)  # the cost a new account pays, so the response time does not tell
    _organization_build(legal_name=legal_name, country=country, time_zone=time_zone, business_name=business_name)
    signup_attempt_notice_send(user=existing)
    audit_record(actor=Actor.system("signup"), action="user.signup_attempted", target=existing)
    return None


def signup_attempt_notice_send(*, user: User) -> None:
    """Tell an account holder that someone tried to sign up with their address."""
    site = settings.SITE_URL.rstrip("/")
    body = render_to_string(
        "accounts/email/signup_attempt.txt",
        {
            "name": user.full_name,
            "login_url": site + reverse("accounts:login"),
            "reset_url": site + reverse("accounts:password_reset"),
        },
    )
    recipient = user.email
    transaction.on_commit(
        lambda: send_mail(
            subject="Someone tried to sign up with your email address",
            message=body,
            from_email=None,
            recipient_list=[recipient],
        )
    )


@transaction.atomic
def organization_create(
    *, actor: User, legal_name: str, country: str, time_zone: str, business_name: str = ""
) -> Organization:
    """A signed-in user creates an organisation and becomes its owner."""
    return _organization_create(
        actor=actor, legal_name=legal_name, country=country, time_zone=time_zone, business_name=business_name
    )


@transaction.atomic
def invitation_signup(*, token: str, email: str, password: str, full_name: str) -> tuple[User, Membership]:
    """A new person joins through an invitation. The link reached their inbox, so the email counts as verified."""
    invitation = invitation_from_token(token)
    if blind_index(EMAIL_INDEX, email) != invitation.email_index:
        raise InvitationError("Use the email address the invitation was sent to.")
    user = user_create(email=email, password=password, full_name=full_name, email_verified=True)
    return user, invitation_accept(token=token, user=user)


def email_verification_token(user: User) -> str:
    # Binding the email's index means a token stops working if the address changes.
    return signing.dumps({"u": str(user.pk), "e": user.email_index}, salt=EMAIL_VERIFICATION_SALT, compress=True)


def email_verification_send(*, user: User) -> None:
    url = settings.SITE_URL.rstrip("/") + reverse(
        "accounts:verify_email", kwargs={"token": email_verification_token(user)}
    )
    body = render_to_string(
        "accounts/email/verify_email.txt",
        {"name": user.full_name, "url": url, "hours": EMAIL_VERIFICATION_MAX_AGE // 3600},
    )
    recipient = user.email
    # After commit: a rolled-back sign-up must not leave a working link in someone's inbox.
    transaction.on_commit(
        lambda: send_mail(
            subject="Confirm your email for the Cloud Licenses Portal",
            message=body,
            from_email=None,
            recipient_list=[recipient],
        )
    )


@transaction.atomic
def email_verify(*, token: str) -> User:
    """Mark the user's email verified from the emailed link. Verifying twice is harmless."""
    try:
        payload = signing.loads(token, salt=EMAIL_VERIFICATION_SALT, max_age=EMAIL_VERIFICATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise EmailVerificationError("This link has expired. Sign in and ask for a new one.") from exc
    except signing.BadSignature as exc:
        raise EmailVerificationError(
            "This link is not valid. Check you copied all of it, or ask for a new one."
        ) from exc
    user = _own_account(payload.get("u"))
    if user is None or user.email_index != payload.get("e"):
        raise EmailVerificationError("This link is no longer valid. Sign in and ask for a new one.")
    if user.email_verified_at is None:
        with person_context(user):
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at"])
            audit_record(actor=Actor.user(user), action="user.email_verified", target=user)
    return user


def _own_account(user_id) -> User | None:
    """The active account a signed link names, locked, read in that person's own context (decision 043)."""
    try:
        user_id = uuid.UUID(str(user_id))
    except ValueError:
        return None
    with person_context(user_id):
        return User.objects.select_for_update().filter(pk=user_id, is_active=True).first()


@transaction.atomic
def user_profile_update(*, user: User, full_name: str, job_title: str) -> User:
    user.full_name = full_name.strip()
    user.job_title = job_title.strip()
    user.full_clean(exclude=["password"])
    with person_context(user):  # their own row (decision 043)
        user.save(update_fields=["full_name", "job_title"])
        audit_record(actor=Actor.user(user), action="user.profile_updated", target=user)
    return user
