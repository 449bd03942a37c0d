"""Team, invitation and API key services: rules that must hold whatever the caller."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from accounts.api_keys import api_key_create, api_key_revoke
from accounts.authentication import hash_api_secret
from accounts.invitations import (
    INVITATION_TTL,
    InvitationError,
    invitation_accept,
    invitation_create,
    invitation_from_token,
    invitation_resend,
    invitation_revoke,
)
from accounts.models import ApiKey, Invitation, Membership
from accounts.org_settings import organization_settings_update
from accounts.roles import Role
from accounts.team import TeamError, membership_change_role, membership_leave, membership_remove
from accounts.tests.api_support import owner_of
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from core.models import AuditEvent

pytestmark = pytest.mark.django_db


def _token_from_mail(message) -> str:
    return re.search(r"/accounts/invitations/([^/\s]+)/", message.body).group(1)


def _invite(org, actor, email="invitee@example.com", role=Role.VIEWER, capture=None):
    with capture(execute=True):
        invitation = invitation_create(organization=org, email=email, role=role, actor=actor)
    return invitation, _token_from_mail(mail.outbox[-1])


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def owner(org):
    return owner_of(org)


# --- invitations ------------------------------------------------------------
def test_invitation_email_link_and_acceptance(org, owner, django_capture_on_commit_callbacks):
    invitation, token = _invite(org, owner, capture=django_capture_on_commit_callbacks)
    assert mail.outbox[-1].to == ["invitee@example.com"]
    assert invitation.token_hash not in mail.outbox[-1].body
    assert invitation_from_token(token).pk == invitation.pk

    user = UserFactory(email="Invitee@Example.com")
    membership = invitation_accept(token=token, user=user)
    assert membership.organization == org
    assert membership.role == Role.VIEWER
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None
    actions = set(AuditEvent.objects.for_org(org).values_list("action", flat=True))
    assert {"invitation.created", "invitation.accepted", "membership.created"} <= actions


def test_invitation_is_single_use(org, owner, django_capture_on_commit_callbacks):
    _invitation, token = _invite(org, owner, capture=django_capture_on_commit_callbacks)
    user = UserFactory(email="invitee@example.com")
    invitation_accept(token=token, user=user)
    with pytest.raises(InvitationError, match="already been used"):
        invitation_accept(token=token, user=user)


def test_tampered_token_is_rejected(org, owner, django_capture_on_commit_callbacks):
    _invitation, token = _invite(org, owner, capture=django_capture_on_commit_callbacks)
    secret, signature = token.rsplit(".", 1)
    tampered = ("A" if secret[0] != "A" else "B") + secret[1:] + "." + signature
    for bad in (tampered, token + "x", "garbage", ""):
        with pytest.raises(InvitationError, match="not valid"):
            invitation_from_token(bad)
    assert not Membership.objects.filter(organization=org, user__email_index__isnull=False).exclude(user=owner).exists()


def test_expired_invitation_is_rejected(org, owner, django_capture_on_commit_callbacks):
    _invitation, token = _invite(org, owner, capture=django_capture_on_commit_callbacks)
    user = UserFactory(email="invitee@example.com")
    with (
        time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)),
        pytest.raises(InvitationError, match="expired"),
    ):
        invitation_accept(token=token, user=user)


def test_invitation_expiry_on_both_sides_of_seven_days(org, owner, django_capture_on_commit_callbacks):
    """Usable one second before the seventh day ends; expired at the instant it ends (expires_at <= now)."""
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        invitation, token = _invite(org, owner, capture=django_capture_on_commit_callbacks)
    assert timedelta(days=7) == INVITATION_TTL
    assert invitation.expires_at == start + INVITATION_TTL
    with time_machine.travel(start + INVITATION_TTL - timedelta(seconds=1), tick=False):
        assert invitation_from_token(token) == invitation
        assert invitation.status == "pending"
    with time_machine.travel(start + INVITATION_TTL, tick=False):
        assert invitation.status == "expired"
        expired = r"^This invitation has expired\. Ask the organisation to send it again\.$"
        with pytest.raises(InvitationError, match=expired):
            invitation_from_token(token)


def test_revoked_invitation_is_rejected(org, owner, django_capture_on_commit_callbacks):
    invitation, token = _invite(org, owner, capture=django_capture_on_commit_callbacks)
    invitation_revoke(organization=org, invitation_id=invitation.pk, actor=owner)
    with pytest.raises(InvitationError, match="withdrawn"):
        invitation_from_token(token)


def test_invitation_for_another_email_is_rejected(org, owner, django_capture_on_commit_callbacks):
    _invitation, token = _invite(org, owner, capture=django_capture_on_commit_callbacks)
    with pytest.raises(InvitationError, match="different email"):
        invitation_accept(token=token, user=UserFactory(email="someone-else@example.com"))
    assert invitation_from_token(token).accepted_at is None


def test_resend_rotates_the_link(org, owner, django_capture_on_commit_callbacks):
    invitation, old_token = _invite(org, owner, capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        invitation_resend(organization=org, invitation_id=invitation.pk, actor=owner)
    new_token = _token_from_mail(mail.outbox[-1])
    assert new_token != old_token
    with pytest.raises(InvitationError):
        invitation_from_token(old_token)
    assert invitation_from_token(new_token).pk == invitation.pk


def test_invitee_email_is_encrypted_and_indexed(org, owner, django_capture_on_commit_callbacks):
    invitation, _token = _invite(org, owner, email="private@example.com", capture=django_capture_on_commit_callbacks)
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM accounts_invitation")
        raw = [row[0] for row in cursor.fetchall()]
    assert len(raw) == 1 and raw[0] and "private@" not in raw[0]
    stored = Invitation.objects.for_org(org).get(pk=invitation.pk)
    assert stored.email == "private@example.com"


def test_cannot_invite_existing_member_or_twice(org, owner, django_capture_on_commit_callbacks):
    member = MembershipFactory(organization=org, role=Role.VIEWER).user
    with pytest.raises(ValidationError, match="already a member"):
        invitation_create(organization=org, email=member.email, role=Role.VIEWER, actor=owner)
    _invite(org, owner, capture=django_capture_on_commit_callbacks)
    with pytest.raises(ValidationError, match="pending invitation"):
        invitation_create(organization=org, email="INVITEE@example.com", role=Role.VIEWER, actor=owner)


def test_non_owner_cannot_grant_owner(org):
    license_admin = MembershipFactory(organization=org, role=Role.LICENSE_ADMIN).user
    with pytest.raises(ValidationError):
        invitation_create(organization=org, email="x@example.com", role=Role.OWNER, actor=license_admin)
    with pytest.raises(ValidationError):
        invitation_create(organization=org, email="x@example.com", role=Role.BILLING_ADMIN, actor=license_admin)


# --- last owner -------------------------------------------------------------
def test_last_owner_cannot_be_removed_demoted_or_leave(org, owner):
    membership = Membership.objects.get(organization=org, user=owner)
    with pytest.raises(TeamError) as removed:
        membership_remove(organization=org, membership_id=membership.pk, actor=owner)
    assert removed.value.code == "last_owner"
    with pytest.raises(TeamError):
        membership_change_role(organization=org, membership_id=membership.pk, role=Role.VIEWER, actor=owner)
    with pytest.raises(TeamError):
        membership_leave(organization=org, user=owner)
    assert Membership.objects.get(pk=membership.pk).role == Role.OWNER


def test_one_of_two_owners_can_go_but_not_both(org, owner):
    second = MembershipFactory(organization=org, role=Role.OWNER)
    membership_remove(organization=org, membership_id=second.pk, actor=owner)
    mine = Membership.objects.get(organization=org, user=owner)
    with pytest.raises(TeamError):
        membership_remove(organization=org, membership_id=mine.pk, actor=owner)
    assert Membership.objects.filter(organization=org, role=Role.OWNER).count() == 1


def test_member_of_another_org_is_not_found(org, owner):
    stranger = MembershipFactory(role=Role.VIEWER)
    with pytest.raises(Membership.DoesNotExist):
        membership_remove(organization=org, membership_id=stranger.pk, actor=owner)
    assert Membership.objects.filter(pk=stranger.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL; SQLite serialises writers")
def test_concurrent_removal_of_two_owners_leaves_one():
    import threading

    from django.db import close_old_connections

    org = OrganizationFactory()
    first = MembershipFactory(organization=org, role=Role.OWNER)
    second = MembershipFactory(organization=org, role=Role.OWNER)
    barrier = threading.Barrier(2)
    errors = []

    def remove(target, actor):
        barrier.wait()
        try:
            membership_remove(organization=org, membership_id=target.pk, actor=actor)
        except TeamError as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [
        threading.Thread(target=remove, args=(first, second.user)),
        threading.Thread(target=remove, args=(second, first.user)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Membership.objects.filter(organization=org, role=Role.OWNER).count() == 1
    assert len(errors) == 1


# --- API keys ---------------------------------------------------------------
def test_api_key_is_hashed_and_prefixed(org, owner):
    key, plaintext = api_key_create(organization=org, name="CI", role=Role.VIEWER, expires_at=None, actor=owner)
    _clp, prefix, secret = plaintext.split("_")
    assert _clp == "clp"
    assert prefix == key.prefix and 8 <= len(prefix) <= 12
    stored = ApiKey.objects.for_org(org).get(pk=key.pk)
    assert stored.secret_hash == hash_api_secret(secret)
    assert secret not in stored.secret_hash
    assert AuditEvent.objects.for_org(org).filter(action="api_key.created", target_id=str(key.pk)).exists()


def test_api_key_role_cannot_exceed_creator(org):
    billing = MembershipFactory(organization=org, role=Role.BILLING_ADMIN).user
    with pytest.raises(ValidationError):
        api_key_create(organization=org, name="x", role=Role.OWNER, expires_at=None, actor=billing)
    with pytest.raises(ValidationError):
        api_key_create(organization=org, name="x", role=Role.LICENSE_ADMIN, expires_at=None, actor=billing)


def test_api_key_expiry_must_be_future(org, owner):
    with pytest.raises(ValidationError):
        api_key_create(
            organization=org, name="x", role=Role.VIEWER, expires_at=timezone.now() - timedelta(days=1), actor=owner
        )


def test_revoke_is_audited_and_scoped(org, owner):
    key, _ = api_key_create(organization=org, name="x", role=Role.VIEWER, expires_at=None, actor=owner)
    other_org = OrganizationFactory()
    with pytest.raises(ApiKey.DoesNotExist):
        api_key_revoke(organization=other_org, api_key_id=key.pk, actor=owner_of(other_org))
    api_key_revoke(organization=org, api_key_id=key.pk, actor=owner)
    assert ApiKey.objects.for_org(org).get(pk=key.pk).revoked_at is not None
    assert AuditEvent.objects.for_org(org).filter(action="api_key.revoked").count() == 1


# --- organisation settings --------------------------------------------------
def _settings(org, owner, **overrides):
    values = {
        "legal_name": "Example GmbH",
        "business_name": "Example",
        "country": "DE",
        "time_zone": "Europe/Berlin",
        "tax_id": "DE136695976",
        "billing_address": {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "de"},
    }
    values.update(overrides)
    return organization_settings_update(organization=org, actor=owner, **values)


def test_settings_update_validates_and_audits(org, owner):
    updated = _settings(org, owner, tax_id="136695976")
    assert updated.tax_id == "DE136695976"
    assert updated.billing_address["country"] == "DE"
    event = AuditEvent.objects.for_org(org).get(action="organization.settings_updated")
    assert "tax_id" in event.metadata["changed"]
    assert "DE136695976" not in str(event.metadata)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"tax_id": "DE123"}, "tax_id"),
        ({"country": "US", "tax_id": "12-34"}, "tax_id"),
        ({"country": "ZZ", "tax_id": "<script>"}, "tax_id"),
        ({"billing_address": {"line1": "x"}}, "billing_address"),
    ],
)
def test_settings_update_rejects_bad_values(org, owner, overrides, field):
    with pytest.raises(ValidationError) as error:
        _settings(org, owner, **overrides)
    assert field in error.value.message_dict
    org.refresh_from_db()
    assert org.time_zone == "UTC"


def test_us_ein_is_accepted(org, owner):
    assert _settings(org, owner, country="US", tax_id="04-2103594", time_zone="America/New_York").tax_id == "042103594"
