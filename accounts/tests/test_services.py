"""Account services called directly: sign-up, organisations, email verification, profile."""

import re

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from accounts import services
from accounts.models import EMAIL_INDEX, ORGANIZATION_SLUG_INDEX, Membership, Organization, User
from core.crypto import blind_index
from core.models import AuditEvent

from .factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = {
    "email": "founder@example.com",
    "password": "a sturdy passphrase 42",
    "full_name": "Founder",
    "legal_name": "Acme Widgets Ltd",
    "country": "gb",
    "time_zone": "Europe/London",
}
NEUTRAL_SLUG = re.compile(r"^org-[bcdfghjkmnpqrstvwxz2-9]{8}$")


def test_signup_creates_owner_and_organisation_and_audits(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        user, organization = services.organization_signup(**SIGNUP)
    assert not user.email_verified
    assert NEUTRAL_SLUG.match(organization.slug) and organization.country == "GB"
    assert Membership.objects.get(user=user, organization=organization).role == "owner"
    actions = set(AuditEvent.unscoped_objects.values_list("action", flat=True))
    assert {"user.created", "organization.created", "membership.created"} <= actions
    assert all("founder" not in str(m) for m in AuditEvent.unscoped_objects.values_list("metadata", flat=True))
    assert len(mail.outbox) == 1 and "/accounts/verify-email/" in mail.outbox[0].body


def test_the_slug_is_neutral_whatever_the_name():
    # Names are encrypted; the slug is plaintext in the database and every URL, so it says nothing of them.
    _, first = services.organization_signup(**SIGNUP)
    _, second = services.organization_signup(**{**SIGNUP, "email": "x@example.com", "legal_name": "株式会社テスト"})
    _, third = services.organization_signup(**{**SIGNUP, "email": "y@example.com", "business_name": "Acme"})
    slugs = [first.slug, second.slug, third.slug]
    assert all(NEUTRAL_SLUG.match(slug) for slug in slugs), slugs
    assert len(set(slugs)) == 3 and not any("acme" in slug for slug in slugs)


def test_a_slug_in_use_or_retired_is_drawn_again(monkeypatch):
    OrganizationFactory(slug="org-bbbbbbbb")
    # An organisation that had "org-cccccccc" before slugs were neutral: its old links must keep reaching it.
    OrganizationFactory(previous_slug_index=blind_index(ORGANIZATION_SLUG_INDEX, "org-cccccccc"))
    draws = iter(["org-bbbbbbbb", "org-cccccccc", "org-dddddddd"])
    monkeypatch.setattr(services, "_neutral_slug", lambda: next(draws))
    _, organization = services.organization_signup(**SIGNUP)
    assert organization.slug == "org-dddddddd"


def test_slug_taken_between_check_and_insert_moves_to_the_next_one(monkeypatch):
    # Another sign-up commits the same slug after this one found it free and before it inserts: the unique
    # constraint refuses, and this sign-up draws again inside its savepoint.
    free_slug = services._free_slug
    raced = []

    def free_slug_then_lose_the_race():
        slug = "org-rrrrrrrr" if not raced else free_slug()
        if not raced:
            raced.append(OrganizationFactory(slug=slug, legal_name="Someone Else Ltd"))
        return slug

    monkeypatch.setattr(services, "_free_slug", free_slug_then_lose_the_race)
    user, organization = services.organization_signup(**SIGNUP)
    assert raced[0].slug == "org-rrrrrrrr"
    assert NEUTRAL_SLUG.match(organization.slug) and organization.slug != "org-rrrrrrrr"
    assert Organization.objects.get(pk=organization.pk).slug == organization.slug
    assert Membership.objects.get(user=user, organization=organization).role == "owner"
    assert Organization.objects.count() == 2


def test_a_slug_that_keeps_losing_races_gives_up_cleanly(monkeypatch):
    def always_taken():
        slug = f"org-{Organization.objects.count() + 2:08d}"
        OrganizationFactory(slug=slug)
        return slug

    monkeypatch.setattr(services, "_free_slug", always_taken)
    with pytest.raises(IntegrityError, match="No free organisation slug"):
        services.organization_signup(**SIGNUP)
    assert User.objects.get_by_email("founder@example.com") is None  # the whole sign-up rolled back


def test_signup_with_a_registered_email_creates_nothing_and_notifies_the_holder(django_capture_on_commit_callbacks):
    holder = UserFactory(email="Founder@Example.com")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.organization_signup(**SIGNUP) is None
    assert list(User.objects.all()) == [holder]
    assert not Organization.objects.exists() and not Membership.objects.exists()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [holder.email]
    assert "/accounts/login/" in mail.outbox[0].body and "/accounts/password-reset/" in mail.outbox[0].body
    assert "/accounts/verify-email/" not in mail.outbox[0].body
    event = AuditEvent.unscoped_objects.get(action="user.signup_attempted")
    assert event.metadata == {}


def test_signup_with_a_registered_email_still_validates_like_a_new_one():
    # Otherwise a weak password or bad country would be refused for new addresses only.
    UserFactory(email="founder@example.com")
    with pytest.raises(ValidationError):
        services.organization_signup(**{**SIGNUP, "password": "password"})
    with pytest.raises(ValidationError):
        services.organization_signup(**{**SIGNUP, "country": "GBR"})
    assert not Organization.objects.exists()


def test_weak_password_and_bad_country_leave_nothing_behind():
    with pytest.raises(ValidationError):
        services.organization_signup(**{**SIGNUP, "password": "password"})
    with pytest.raises(ValidationError):
        services.organization_signup(**{**SIGNUP, "country": "GBR"})
    with pytest.raises(ValidationError):
        services.organization_signup(**{**SIGNUP, "time_zone": "Nowhere/Special"})
    assert not User.objects.exists() and not Organization.objects.exists()


def test_email_verification_token_round_trip_and_email_change_invalidates():
    user, _ = services.organization_signup(**SIGNUP)
    token = services.email_verification_token(user)
    assert services.email_verify(token=token).email_verified
    assert services.email_verify(token=token).pk == user.pk  # idempotent
    stale = services.email_verification_token(user)
    # As if the address changed (the token is bound to the email's blind index).
    User.objects.filter(pk=user.pk).update(email_index=blind_index(EMAIL_INDEX, "changed@example.com"))
    with pytest.raises(services.EmailVerificationError):
        services.email_verify(token=stale)
    with pytest.raises(services.EmailVerificationError):
        services.email_verify(token="garbage")


def test_organization_create_for_existing_user():
    user = UserFactory()
    organization = services.organization_create(
        actor=user, legal_name="Second Co", country="US", time_zone="America/New_York"
    )
    assert Membership.objects.get(user=user, organization=organization).role == "owner"


def test_profile_update_is_encrypted_and_validated():
    user = UserFactory()
    services.user_profile_update(user=user, full_name="  Maria Ñúñez ", job_title="CTO")
    reloaded = User.objects.get(pk=user.pk)
    assert (reloaded.full_name, reloaded.job_title) == ("Maria Ñúñez", "CTO")
    raw = User.objects.filter(pk=user.pk).values_list("full_name", flat=True).get()
    assert "Maria" not in raw
    with pytest.raises(ValidationError):
        services.user_profile_update(user=user, full_name="x" * 151, job_title="")
