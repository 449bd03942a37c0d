"""Row-level security per person on the tables a person owns rather than an organisation.

``person_isolation`` admits the rows of the people in ``app.user_ids`` (``core.tenancy.person_context``);
rows of no person (attempts against unknown addresses) may be appended and read, never changed. The
list is frozen here, as a migration must be; ``core.tenancy.PERSON_SCOPED_TABLES`` is the live one and
``tests/test_rls.py`` checks they agree. See docs/decisions/032-row-level-security-per-person.md.
"""

from django.db import migrations

from core.tenancy import rls_person_disable_sql, rls_person_enable_sql

PERSON_SCOPED = ["security_signinevent", "security_loginsignal"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in PERSON_SCOPED:
        schema_editor.execute(rls_person_enable_sql(table))


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in PERSON_SCOPED:
        schema_editor.execute(rls_person_disable_sql(table))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0005_rls_on_every_tenant_table"),
        ("accounts", "0013_staff_grants"),
        ("security", "0005_login_signals_and_fraud_cases"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
