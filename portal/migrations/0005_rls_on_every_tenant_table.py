"""Row-level security on every tenant table, with policies no session setting can widen.

Tables that already had a policy (keyed on ``app.org_ids`` *or* ``app.rls_bypass``) get the
strict one; the fifteen that had none get it for the first time. Cross-tenant reads now run
as the system role (docs/decisions/025-rls-without-a-bypass.md). The list is frozen here, as a
migration must be; ``tests/test_rls.py`` derives the tables that need a policy from the models
and the live schema, so a new tenant table fails it until its own migration enables RLS.
"""

from django.db import migrations

from core.tenancy import rls_disable_sql, rls_enable_sql

# Had a policy with the bypass clause: reversing restores nothing weaker, the strict policy stays.
ALREADY_PROTECTED = [
    "accounts_apikey",
    "accounts_invitation",
    "accounts_microsofttenant",
    "billing_billingprofile",
    "billing_invoice",
    "billing_paymentmethod",
    "core_fieldlockconflict",
    "licensing_bulkjobrow",
    "licensing_customeragreement",
    "licensing_directoryuser",
    "licensing_licenseassignment",
    "licensing_notification",
    "licensing_provisioningattempt",
    "licensing_provisioningoperation",
    "licensing_tenantonboarding",
    "portal_idempotencyrecord",
    "privacy_correction",
    "privacy_fieldlock",
]
# Had none.
NEWLY_PROTECTED = [
    "billing_dunningreminder",
    "billing_invoiceline",
    "billing_payment",
    "licensing_bulkjob",
    "licensing_directorysync",
    "licensing_gdaprelationship",
    "licensing_licensingsettings",
    "licensing_order",
    "licensing_reductionproposal",
    "licensing_seatbatch",
    "licensing_subscription",
    "licensing_subscriptionevent",
    "licensing_tenantsku",
    "licensing_usagesnapshot",
]
# Account-level events (sign-up, sign-in changes) belong to no organisation: the application role
# appends and reads them (INSERT ... RETURNING needs that), and cannot update or delete them.
ORGLESS_ROWS = ["security_auditevent"]


def _postgres(apps, schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def forwards(apps, schema_editor):
    if not _postgres(apps, schema_editor):
        return
    for table in ALREADY_PROTECTED + NEWLY_PROTECTED:
        schema_editor.execute(rls_enable_sql(table))
    for table in ORGLESS_ROWS:
        schema_editor.execute(rls_enable_sql(table, orgless_rows=True))


def backwards(apps, schema_editor):
    if not _postgres(apps, schema_editor):
        return
    for table in NEWLY_PROTECTED + ORGLESS_ROWS:
        schema_editor.execute(rls_disable_sql(table))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0004_job_runs_for_status_page"),
        ("core", "0003_field_lock_restriction_and_conflicts"),
        ("accounts", "0006_user_privacy_notice_version"),
        ("licensing", "0010_seat_pool_over_assignment"),
        ("billing", "0005_dunning_reminders"),
        ("privacy", "0010_legal_holds_and_retention_runs"),
        ("security", "0004_move_models_to_lower_floors"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
