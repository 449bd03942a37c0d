"""Helpers for the team and API tests: API keys and clients acting for an organisation."""

from rest_framework.test import APIClient

from accounts.api_keys import api_key_create
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory


def owner_of(organization=None):
    organization = organization or OrganizationFactory()
    return MembershipFactory(organization=organization, role=Role.OWNER).user


def make_api_key(organization, role=Role.OWNER, *, expires_at=None, creator=None):
    creator = creator or owner_of(organization)
    return api_key_create(organization=organization, name="Test key", role=role, expires_at=expires_at, actor=creator)


def key_client(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def api_client_for(organization, role=Role.OWNER) -> APIClient:
    _key, plaintext = make_api_key(organization, role)
    return key_client(plaintext)
