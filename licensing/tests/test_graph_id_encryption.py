"""A directory user's Entra object id is stored encrypted, found through its keyed index (migration 0012)."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from accounts.roles import Role
from accounts.tests.api_support import api_client_for
from accounts.tests.factories import OrganizationFactory
from core.tenancy import tenant_context
from licensing.models import DirectoryUser
from licensing.models.directory import graph_id_index_of
from licensing.services.directory import directory_user_upsert_from_graph
from licensing.tests.core.factories import DirectoryUserFactory

BEFORE = [("licensing", "0011_encrypt_onboarding_domain_and_company_name")]
AFTER = [("licensing", "0012_encrypt_directory_user_graph_id")]


def raw_graph_id(pk) -> str:
    table = connection.ops.quote_name(DirectoryUser._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT graph_id FROM {table} WHERE id = %s",
                       [pk.hex if connection.vendor == "sqlite" else pk])
        return str(cursor.fetchone()[0])


def _graph_user(graph_id, upn: str, **overrides) -> dict:
    return {"id": str(graph_id), "displayName": upn.split("@")[0], "userPrincipalName": upn, "mail": upn,
            "jobTitle": None, "department": None, "usageLocation": "GB", "accountEnabled": True,
            "assignedLicenses": [], **overrides}


@pytest.mark.django_db
def test_the_object_id_is_stored_encrypted_and_found_by_its_index():
    user = DirectoryUserFactory()
    graph_id = user.graph_id
    stored = raw_graph_id(user.pk)
    assert str(graph_id) not in stored and graph_id.hex not in stored
    with tenant_context(user.organization):
        found = DirectoryUser.objects.for_org(user.organization).get(graph_id_index=graph_id_index_of(graph_id))
        assert found.pk == user.pk and found.graph_id == graph_id
        # Any spelling of the same id finds the same row.
        assert DirectoryUser.objects.for_org(user.organization).filter(
            graph_id_index=graph_id_index_of(str(graph_id).upper())).get().pk == user.pk
        assert DirectoryUser.objects.for_org(user.organization).filter(
            graph_id_index=graph_id_index_of(graph_id.hex)).get().pk == user.pk


@pytest.mark.django_db
def test_an_object_id_is_unique_per_organisation_not_across_them():
    user = DirectoryUserFactory()
    other = OrganizationFactory()
    with tenant_context(other):
        DirectoryUserFactory(organization=other, graph_id=user.graph_id)  # another tenant's copy is allowed
    with tenant_context(user.organization), pytest.raises(IntegrityError), transaction.atomic():
        DirectoryUserFactory(organization=user.organization, graph_id=str(user.graph_id).upper())


@pytest.mark.django_db
def test_the_sync_matches_rows_by_the_index_and_keeps_one_row_per_user():
    org, graph_id = OrganizationFactory(), uuid.uuid4()
    with tenant_context(org):
        assert directory_user_upsert_from_graph(organization=org, users=[_graph_user(graph_id, "ana@contoso.example")]
                                                )["created"] == 1
        again = directory_user_upsert_from_graph(organization=org, users=[
            _graph_user(str(graph_id).upper(), "ana@contoso.example", jobTitle="Buyer")])
        assert (again["created"], again["updated"]) == (0, 1)
        user = DirectoryUser.objects.for_org(org).get()
        assert (user.graph_id, user.job_title) == (graph_id, "Buyer")


@pytest.mark.django_db
def test_the_api_shows_the_object_id_decrypted():
    user = DirectoryUserFactory()
    api = api_client_for(user.organization, Role.VIEWER)
    body = api.get(f"/api/v1/directory-users/{user.pk}/").json()
    assert body["graph_id"] == str(user.graph_id) and "graph_id_index" not in body


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_and_indexes_existing_rows_in_batches_and_reverses():
    org = OrganizationFactory()
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    Old = executor.loader.project_state(BEFORE).apps.get_model("licensing", "DirectoryUser")
    ids = [uuid.uuid4() for _ in range(230)]  # more than one UPDATE batch of a hundred
    Old.unscoped_objects.bulk_create([
        Old(organization_id=org.pk, graph_id=gid, user_principal_name=f"user{n}@contoso.example")
        for n, gid in enumerate(ids)
    ])
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    with tenant_context(org):
        users = DirectoryUser.objects.for_org(org)
        assert users.count() == len(ids)
        for gid in (ids[0], ids[150], ids[-1]):
            user = users.get(graph_id_index=graph_id_index_of(gid))
            assert user.graph_id == gid and str(gid) not in raw_graph_id(user.pk)
        assert not users.filter(graph_id_index__isnull=True).exists()
        # The sync finds the migrated rows: the same user listed again is updated, not created twice.
        listed = _graph_user(ids[7], "user7@contoso.example")
        counts = directory_user_upsert_from_graph(organization=org, users=[listed])
        assert (counts["created"], counts["updated"]) == (0, 1) and users.count() == len(ids)

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    Old = executor.loader.project_state(BEFORE).apps.get_model("licensing", "DirectoryUser")
    assert set(Old.unscoped_objects.values_list("graph_id", flat=True)) == set(ids)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
