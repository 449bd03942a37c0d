import pytest

from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from accounts.tests.helpers import verified_client


@pytest.fixture
def organization(db):
    return OrganizationFactory(legal_name="Contoso Ltd", slug="contoso")


@pytest.fixture
def member_client(client, organization):
    """Returns a function: member_client(role) -> (client signed in as a new member with that role, user)."""

    def make(role=Role.OWNER, user=None):
        user = user or UserFactory()
        MembershipFactory(user=user, organization=organization, role=role)
        return verified_client(client, user), user

    return make


@pytest.fixture
def owner(member_client):
    return member_client(Role.OWNER)
