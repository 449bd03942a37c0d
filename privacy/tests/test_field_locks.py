"""Field locks: the correction reason is personal data, encrypted under the organisation's key."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.tests.factories import OrganizationFactory, UserFactory
from core.crypto import keyring
from core.field_locks import lock_field, locked_fields
from core.models import FieldLock
from core.registry import Category, declaration_for

BEFORE = [("privacy", "0001_initial")]
AFTER = [("privacy", "0002_encrypt_fieldlock_reason")]


def _raw_reason(lock_id) -> str | None:
    return FieldLock.unscoped_objects.filter(pk=lock_id).values_list("reason", flat=True).get()


@pytest.mark.django_db
def test_reason_is_stored_encrypted_and_locks_still_read():
    organization, other = OrganizationFactory(), OrganizationFactory()
    lock = lock_field(
        organization=organization,
        model="licensing.directoryuser",
        object_id="u-1",
        field_name="display_name",
        locked_by=UserFactory(),
        reason="Ana García asked to be listed as Ana Garcia-López",
    )
    assert "García" not in _raw_reason(lock.pk)
    assert FieldLock.objects.for_org(organization).get(pk=lock.pk).reason.startswith("Ana García")
    again = lock_field(organization=organization, model="licensing.directoryuser", object_id="u-1",
                       field_name="display_name", reason="ignored: already locked")
    assert again.pk == lock.pk and again.reason.startswith("Ana García")
    assert locked_fields(organization, "licensing.directoryuser", ["u-1", "u-2"]) == {"u-1": {"display_name"}}
    assert locked_fields(other, "licensing.directoryuser", ["u-1"]) == {}
    unexplained = lock_field(organization=organization, model="licensing.directoryuser", object_id="u-2",
                             field_name="mail")
    assert FieldLock.objects.for_org(organization).get(pk=unexplained.pk).reason == ""


def test_reason_is_declared_personal():
    classification = declaration_for(FieldLock).classification("reason")
    assert classification and classification.category == Category.IDENTITY


@pytest.mark.django_db(transaction=True)
def test_migration_encrypts_existing_reasons_and_reverses():
    organization = OrganizationFactory()
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    OldLock = executor.loader.project_state(BEFORE).apps.get_model("privacy", "FieldLock")
    written = OldLock._base_manager.create(organization_id=organization.pk, model_label="licensing.directoryuser",
                                           object_id="u-9", field_name="mail", reason="Bo Lind's old address")
    blank = OldLock._base_manager.create(organization_id=organization.pk, model_label="licensing.directoryuser",
                                         object_id="u-9", field_name="display_name", reason="")
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    keyring.clear()
    assert "Bo Lind" not in _raw_reason(written.pk)
    # Only the columns that exist at this migration: later ones (core's restricted_at) are unapplied here.
    at_this_state = FieldLock.objects.for_org(organization).only("id", "organization", "reason")
    assert at_this_state.get(pk=written.pk).reason == "Bo Lind's old address"
    assert at_this_state.get(pk=blank.pk).reason == ""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    assert _raw_reason(written.pk) == "Bo Lind's old address"
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
