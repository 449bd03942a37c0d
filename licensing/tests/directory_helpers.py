"""Shared setup for the directory, assignment, usage and notification tests.

``linked_org`` is an organisation linked to the emulator's seeded Fabrikam tenant (300 users,
Business Premium 25 seats with 20 assigned, app consented); ``graph`` routes the services'
Graph calls to the test client whose sleeps are recorded, not slept.
"""

from __future__ import annotations

import io
import uuid

import pytest

import licensing.tasks_directory  # noqa: F401 - registers the tasks the services enqueue by name
from accounts.models import MicrosoftTenant
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from core.audit import Actor
from core.tenancy import tenant_context
from licensing.models import DirectorySync, TenantSku
from licensing.services import directory as directory_services

FABRIKAM = "3f2c7b1e-8d4a-4c6e-9b0f-1a2d3e4f5a6b"
BUSINESS_PREMIUM = uuid.UUID("cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46")
SYSTEM = Actor.system("tests")


def link_tenant(organization, tenant_id: str = FABRIKAM) -> MicrosoftTenant:
    with tenant_context(organization):
        return MicrosoftTenant.objects.create(
            organization=organization, tenant_id=uuid.UUID(tenant_id), primary_domain="fabrikamdemo.onmicrosoft.com",
            relationship_status=MicrosoftTenant.RelationshipStatus.ACTIVE,
        )


@pytest.fixture
def graph(ms, monkeypatch):
    # graph_for, the one seam to Graph, lives in the graph module of the directory services.
    monkeypatch.setattr("licensing.services.directory.graph.default_client", lambda: ms)
    return ms


@pytest.fixture
def linked_org(db, emulator, graph):
    organization = OrganizationFactory()
    link_tenant(organization)
    return organization


@pytest.fixture
def owner(linked_org):
    return MembershipFactory(organization=linked_org, role=Role.OWNER).user


def run_sync(organization) -> DirectorySync:
    with tenant_context(organization):
        sync = directory_services.directory_sync_request(organization=organization, actor=SYSTEM)
    # Eager Celery ran it on commit; re-read the outcome.
    with tenant_context(organization):
        return DirectorySync.objects.for_org(organization).get(pk=sync.pk)


def premium(organization) -> TenantSku:
    with tenant_context(organization):
        return TenantSku.objects.for_org(organization).get(sku_id=BUSINESS_PREMIUM)


def csv_upload(lines: list[str]) -> io.BytesIO:
    return io.BytesIO(("\n".join(lines) + "\n").encode())
