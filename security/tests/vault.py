"""A test-only model with one encrypted field of every kind.

It is registered under the ``security`` label but never migrated: the session fixture
``vault_table`` creates its table in the test database. It is not a TenantModel, so
the cross-tenant sweep does not see it.
"""

import uuid

from django.db import models

from core.fields import (
    EncryptedCharField,
    EncryptedDateField,
    EncryptedDecimalField,
    EncryptedJSONField,
    EncryptedTextField,
)
from core.registry import Category, Personal, Subject, declare


class Vault(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No database constraint: the table is outside the flush list of transactional tests, and a
    # foreign key into accounts_organization would make Postgres refuse to truncate that table.
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    subject_id = models.UUIDField(null=True, blank=True)
    note = EncryptedTextField(null=True, blank=True)
    name = EncryptedCharField(max_length=50, null=True, blank=True)
    data = EncryptedJSONField(null=True, blank=True)
    born = EncryptedDateField(null=True, blank=True)
    amount = EncryptedDecimalField(null=True, blank=True)
    secret = EncryptedCharField(max_length=100, null=True, blank=True, key_scope="field:subject_id")

    class Meta:
        app_label = "security"
        managed = False
        db_table = "security_test_vault"

    def __str__(self):
        return str(self.pk)


declare(
    Vault,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={name: Personal(Category.BILLING) for name in ("note", "name", "data", "born", "amount", "secret")},
    not_personal=["subject_id"],
)
