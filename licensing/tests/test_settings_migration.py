"""Migration 0005 moves each organisation's reporting preferences into its licensing settings."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.tests.factories import OrganizationFactory

BEFORE = [("licensing", "0004_order_idempotency_key")]
AFTER = [("licensing", "0005_merge_reporting_preferences_into_licensing_settings")]


@pytest.mark.django_db(transaction=True)
def test_reporting_preferences_are_copied_into_licensing_settings():
    both, prefs_only, neither = OrganizationFactory(), OrganizationFactory(), OrganizationFactory()
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    old.get_model("licensing", "LicensingSettings").unscoped_objects.create(
        organization_id=both.pk, approval_threshold=Decimal("500.00"), currency="EUR")
    Preferences = old.get_model("licensing", "ReportingPreferences")
    Preferences.unscoped_objects.create(organization_id=both.pk, inactive_days=45, reminder_offsets=[14, 1],
                                        email_notifications=False)
    Preferences.unscoped_objects.create(organization_id=prefs_only.pk, inactive_days=60, reminder_offsets=[3],
                                        email_notifications=True)
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    Settings = executor.loader.project_state(AFTER).apps.get_model("licensing", "LicensingSettings")
    merged = Settings.unscoped_objects.get(organization_id=both.pk)
    assert (merged.approval_threshold, merged.currency) == (Decimal("500.00"), "EUR")
    assert (merged.inactive_days, merged.reminder_offsets, merged.email_notifications) == (45, [14, 1], False)
    created = Settings.unscoped_objects.get(organization_id=prefs_only.pk)
    assert (created.approval_threshold, created.inactive_days, created.reminder_offsets) == (None, 60, [3])
    assert not Settings.unscoped_objects.filter(organization_id=neither.pk).exists()
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
