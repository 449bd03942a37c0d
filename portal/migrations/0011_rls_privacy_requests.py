"""Row-level security on privacy requests, their history and their authorisation documents.

A request is admitted when it is in ``app.privacy_request_ids`` (the one request the officer's desk, the
anonymous requester's code form, intake, an export or an erasure works on) or its requester's account is in
``app.user_ids`` (the person's own requests); events and documents through their request. The officer's queue,
the request records, the queue metrics and retention read them as the system role.
The list is frozen here, as a migration must be; ``tests/test_rls_privacy_requests.py`` checks it.
See docs/decisions/048-row-level-security-on-privacy-requests.md.
"""

from django.db import migrations

from core.tenancy import rls_privacy_request_disable_sql, rls_privacy_request_enable_sql

# The request first: the other two policies read it.
REQUEST_SCOPED = ["privacy_privacyrequest", "privacy_privacyrequestevent", "privacy_authorizationdocument"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in REQUEST_SCOPED:
        schema_editor.execute(rls_privacy_request_enable_sql(table))


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in reversed(REQUEST_SCOPED):
        schema_editor.execute(rls_privacy_request_disable_sql(table))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0010_rls_staff_side"),
        ("privacy", "0017_request_subject_email"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
