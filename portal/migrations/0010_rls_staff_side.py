"""Row-level security on the staff-side tables of billing reconciliation, service announcements, the
disclosure log, legal holds and opt-outs.

Microsoft's imported line items and the reconciliation findings carry the organisation each was matched
to: ``tenant_isolation`` admits the rows of ``app.org_ids``; the import and the matching are partner-wide
and write as the system role. Findings matched to no customer (a subscription no customer of ours has)
may be read by the application role, which the admin's findings list needs, and never written. The
announcement targeting table names one organisation per row: a customer's dashboard joins only the rows
naming its own. The disclosure log is written and read in its organisation's context
(``core.disclosures``, access reports, recipients' notices); the officer's inventory of recipients reads it
as the system role; disclosures of no organisation may be appended and read, as org-less audit events.
A legal hold names an organisation or a person: it is admitted in that organisation's context or that
person's (``person_rows``); erasure and retention read every active hold as the system role. An opt-out
is an organisation's or a person's, the same way; the disclosure gate reads an organisation's and its
members' as the system role.
The lists are frozen here, as a migration must be; ``tests/test_rls_staff_side.py`` checks them.
See docs/decisions/045-row-level-security-on-staff-side-tables.md.
"""

from django.db import migrations

from core.tenancy import rls_disable_sql, rls_enable_sql

TENANT_SCOPED = ["billing_microsoftlineitem", "licensing_serviceannouncement_organizations"]
# Rows of no organisation that the application role may read (only the system role writes them).
TENANT_SCOPED_ORGLESS_READS = ["billing_reconciliationfinding"]
# Rows of no organisation that the application role may append and read, never change (as audit events).
TENANT_SCOPED_ORGLESS_ROWS = ["privacy_disclosure"]
# Rows of an organisation, or naming a person (``user_id``), admitted in either's context.
TENANT_OR_PERSON_SCOPED = ["privacy_legalhold", "privacy_optout"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TENANT_SCOPED:
        schema_editor.execute(rls_enable_sql(table))
    for table in TENANT_SCOPED_ORGLESS_READS:
        schema_editor.execute(rls_enable_sql(table, orgless_reads=True))
    for table in TENANT_SCOPED_ORGLESS_ROWS:
        schema_editor.execute(rls_enable_sql(table, orgless_rows=True))
    for table in TENANT_OR_PERSON_SCOPED:
        schema_editor.execute(rls_enable_sql(table, person_rows=True))


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in [*TENANT_SCOPED, *TENANT_SCOPED_ORGLESS_READS, *TENANT_SCOPED_ORGLESS_ROWS, *TENANT_OR_PERSON_SCOPED]:
        schema_editor.execute(rls_disable_sql(table))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0009_rls_organizations_memberships_grants"),
        ("billing", "0003_reconciliation_with_microsoft"),
        ("licensing", "0001_initial"),
        ("core", "0003_field_lock_restriction_and_conflicts"),
        ("privacy", "0010_legal_holds_and_retention_runs"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
