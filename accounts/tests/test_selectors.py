"""Team page reads: scoped to the organisation asked for, whatever tenant context the caller is in."""

import uuid

import pytest
from django.utils import timezone

from accounts import selectors
from accounts.invitations import invitation_create
from accounts.models import Organization, Role
from accounts.tests.api_support import make_api_key, owner_of
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from core.tenancy import tenant_context

pytestmark = pytest.mark.django_db


def _invite(organization, email):
    return invitation_create(organization=organization, email=email, role="viewer", actor=owner_of(organization))


def test_open_invitations_are_the_organisations_unanswered_ones_newest_first():
    org, other = OrganizationFactory(), OrganizationFactory()
    older = _invite(org, "older@example.com")
    newer = _invite(org, "newer@example.com")
    accepted = _invite(org, "accepted@example.com")
    revoked = _invite(org, "revoked@example.com")
    _invite(other, "elsewhere@example.com")
    type(accepted).objects.for_org(org).filter(pk=accepted.pk).update(accepted_at=timezone.now())
    type(revoked).objects.for_org(org).filter(pk=revoked.pk).update(revoked_at=timezone.now())
    # Outside any tenant context and inside another organisation's, the answer is the same.
    assert list(selectors.open_invitations(org)) == [newer, older]
    with tenant_context(other):
        assert list(selectors.open_invitations(org)) == [newer, older]


def test_invitation_and_api_keys_of_another_organisation_are_not_found():
    org, other = OrganizationFactory(), OrganizationFactory()
    invitation = _invite(other, "elsewhere@example.com")
    key, _ = make_api_key(org)
    make_api_key(other)
    assert selectors.invitation_of_organization(org, invitation.pk) is None
    assert selectors.invitation_of_organization(other, invitation.pk) == invitation
    assert list(selectors.api_keys_of_organization(org)) == [key]


def test_the_signed_in_user_comes_with_their_active_organisations_memberships_taken_once():
    alice = UserFactory()
    zulu = MembershipFactory(user=alice, organization=OrganizationFactory(slug="org-zulu"), role=Role.OWNER)
    alpha = MembershipFactory(user=alice, organization=OrganizationFactory(slug="org-alpha"), role=Role.VIEWER)
    MembershipFactory(user=alice, organization=OrganizationFactory(status=Organization.Status.SUSPENDED))
    MembershipFactory(organization=alpha.organization)  # someone else's

    user = selectors.signed_in_user(str(alice.pk))
    assert user == alice and user.memberships_at_sign_in == [alpha, zulu]  # memberships_for_user's order
    assert all(m.user is user for m in user.memberships_at_sign_in)
    assert selectors.memberships_of_request_user(user) == selectors.memberships_for_user(alice) == [alpha, zulu]
    # Taken once: a membership added later is in the next read.
    later = MembershipFactory(user=alice, organization=OrganizationFactory(slug="org-mike"))
    assert selectors.memberships_of_request_user(user) == [alpha, later, zulu]


def test_someone_in_no_active_organisation_is_read_alone_and_nobody_is_read_from_a_bad_id():
    staff = UserFactory(is_staff=True)
    suspended = MembershipFactory(organization=OrganizationFactory(status=Organization.Status.SUSPENDED)).user
    for person in (staff, suspended):
        user = selectors.signed_in_user(person.pk)
        assert user == person and user.memberships_at_sign_in == []
        assert selectors.memberships_of_request_user(user) == []
    assert selectors.signed_in_user(uuid.uuid4()) is None
    assert selectors.signed_in_user("not-a-uuid") is None
