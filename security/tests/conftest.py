import pytest
from django.db import connection

from accounts.models import Organization

from .vault import Vault


@pytest.fixture(scope="session")
def vault_table(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        if Vault._meta.db_table not in connection.introspection.table_names():
            with connection.schema_editor() as editor:
                editor.create_model(Vault)


@pytest.fixture
def org_a(db):
    return Organization.objects.create(slug="org-a", legal_name="Org A", country="US")


@pytest.fixture
def org_b(db):
    return Organization.objects.create(slug="org-b", legal_name="Org B", country="GB")


@pytest.fixture
def vault(vault_table, db):
    return Vault


from licensing.tests.conftest import emulator, emulator_server  # noqa: E402, F401  (fixtures)
