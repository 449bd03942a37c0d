"""``core.fields.encrypted_bulk_insert`` writes what a save would, and on PostgreSQL sends its rows as one
parameter bound on the server (``server_bound_cursor``, core/postgresql/base.py), not quoted into the statement."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import OrganizationFactory
from core.fields import encrypted_bulk_insert
from core.tenancy import tenant_context
from licensing.models import DirectoryUser
from licensing.models.directory import graph_id_index_of

# Text a literal must escape, placeholders either binding style could mistake for its own, and non-ASCII.
AWKWARD = ["O'Brien", 'say "hi" \\ back\\', "50% off %s %(name)s", "$1 and $2", "Zoë Ñúñez 😀", "a\nb\tc"]


def _rows(organization, names):
    return [{"organization_id": organization.pk, "graph_id": uuid.uuid4(), "display_name": name,
             "user_principal_name": f"user{n}@fabrikam.example", "mail": f"user{n}@fabrikam.example",
             "job_title": name, "usage_location": "GB", "has_usage_location": True}
            for n, name in enumerate(names)]


@pytest.mark.django_db
def test_awkward_text_is_stored_encrypted_and_reads_back_as_given():
    organization = OrganizationFactory()
    rows = _rows(organization, AWKWARD)
    with tenant_context(organization):
        encrypted_bulk_insert(DirectoryUser, rows)
        stored = {user.pk: user for user in DirectoryUser.objects.for_org(organization)}
        table = connection.ops.quote_name(DirectoryUser._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT display_name FROM {table}")
            raw = [value for (value,) in cursor.fetchall()]
    assert len(stored) == len(AWKWARD)
    for row in rows:
        user = stored[row["id"]]  # the row's dict was completed with its new primary key
        assert (user.display_name, user.job_title, user.graph_id) == (row["display_name"], row["display_name"],
                                                                     row["graph_id"])
        assert user.graph_id_index == graph_id_index_of(row["graph_id"])
    assert not set(raw) & set(AWKWARD)  # ciphertext at rest


@pytest.mark.django_db
def test_a_duplicate_is_refused_with_djangos_integrity_error_and_nothing_is_written():
    organization = OrganizationFactory()
    rows = _rows(organization, ["first", "second"])
    rows[1]["graph_id"] = rows[0]["graph_id"]  # one Entra object id twice: the uniqueness constraint
    with tenant_context(organization):
        with pytest.raises(IntegrityError), transaction.atomic():
            encrypted_bulk_insert(DirectoryUser, rows)
        assert not DirectoryUser.objects.for_org(organization).exists()


@pytest.mark.django_db
def test_on_postgresql_the_rows_travel_beside_the_statement_not_inside_it():
    if connection.vendor != "postgresql":
        pytest.skip("the server-side binding is PostgreSQL's")
    organization = OrganizationFactory()
    marker = f"marker-{uuid.uuid4()}"
    with tenant_context(organization), CaptureQueriesContext(connection) as queries:
        encrypted_bulk_insert(DirectoryUser, _rows(organization, [marker]))
    inserts = [query["sql"] for query in queries if query["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    # The statement as the server received it: a placeholder where the document goes, and no row in it.
    assert "json_populate_recordset" in inserts[0] and "$1" in inserts[0]
    assert organization.pk.hex not in inserts[0] and str(organization.pk) not in inserts[0]


@pytest.mark.django_db
def test_rows_without_a_key_get_new_version_4_ids_and_a_given_key_is_kept():
    organization = OrganizationFactory()
    rows = _rows(organization, ["one", "two", "three"])
    given = rows[1]["id"] = uuid.uuid4()
    with tenant_context(organization):
        encrypted_bulk_insert(DirectoryUser, rows)
        stored = set(DirectoryUser.objects.for_org(organization).values_list("pk", flat=True))
    assert rows[1]["id"] == given
    assert stored == {row["id"] for row in rows} and len(stored) == 3
    assert {row["id"].version for row in rows} == {4}
