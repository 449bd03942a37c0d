"""Which database alias the router names, inside and outside ``unscoped_no_tenant()`` (decision 025).

Tests run on one alias, so the system alias is configured here only while the router is asked: a
cross-tenant read must go to the role that bypasses row-level security, and everything else, writes
inside a tenant context above all, to the application role.
"""

import pytest
from django.db import DEFAULT_DB_ALIAS
from django.test import override_settings

from accounts.models import Organization
from core.tenancy import SystemDatabaseRouter, system_database, tenant_context, unscoped_no_tenant

pytestmark = pytest.mark.django_db

ROUTER = SystemDatabaseRouter()


def routes():
    return ROUTER.db_for_read(Organization), ROUTER.db_for_write(Organization)


def test_the_system_alias_is_the_configured_one_else_default(settings):
    settings.TENANCY_SYSTEM_DATABASE = "system"
    assert system_database() == "system"
    del settings.TENANCY_SYSTEM_DATABASE
    assert system_database() == DEFAULT_DB_ALIAS


def test_only_reads_and_writes_inside_unscoped_no_tenant_go_to_the_system_alias():
    organization = Organization.objects.create(slug="router", legal_name="Router Ltd", country="GB")
    with override_settings(TENANCY_SYSTEM_DATABASE="system"):
        assert routes() == (DEFAULT_DB_ALIAS, DEFAULT_DB_ALIAS)
    with unscoped_no_tenant():
        with override_settings(TENANCY_SYSTEM_DATABASE="system"):
            assert routes() == ("system", "system")
        with tenant_context(organization), override_settings(TENANCY_SYSTEM_DATABASE="system"):
            assert routes() == (DEFAULT_DB_ALIAS, DEFAULT_DB_ALIAS)


def test_migrations_run_on_the_default_alias_only():
    # The system alias is the same database as another role: migrating it too would run every migration twice.
    assert ROUTER.allow_migrate(DEFAULT_DB_ALIAS, "accounts") is True
    assert ROUTER.allow_migrate("system", "accounts", model_name="organization") is False
