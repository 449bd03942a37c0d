"""Row-level security per person on tracked sessions, second-factor devices and passkeys; append-only on
anonymous browsers' opt-outs.

The middleware that read these rows before any view could set ``app.user_ids`` now finds the session's
device through the system role, keyed by the device id in the session and bound to the session's user
(``accounts.selectors.session_device``); everything else reads and writes them inside
``core.tenancy.person_context``. None of these tables has rows of no person, so no ownerless policy. A
passkey's attestation has no user column: it is admitted when its passkey is. A browser's opt-out has no
person at all: the application role may append one and read none. The lists are frozen here, as a
migration must be; ``tests/test_rls.py`` checks them against ``core.tenancy``. See
docs/decisions/035-row-level-security-on-sessions-and-devices.md.
"""

from django.db import migrations

from core.tenancy import (
    rls_append_only_disable_sql,
    rls_append_only_enable_sql,
    rls_person_disable_sql,
    rls_person_enable_sql,
)

PERSON_SCOPED = [
    "accounts_usersession",
    "accounts_totpdevice",
    "accounts_recoverycodedevice",
    "django_otp_webauthn_webauthncredential",
    "django_otp_webauthn_webauthnuserhandle",
]
# Admitted through the row they point to (column, parent table); after the parent's policy exists.
PERSON_SCOPED_THROUGH = {
    "django_otp_webauthn_webauthnattestation": ("credential_id", "django_otp_webauthn_webauthncredential"),
}
APPEND_ONLY = ["privacy_browseroptout"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in PERSON_SCOPED:
        schema_editor.execute(rls_person_enable_sql(table, ownerless_rows=False))
    for table, through in PERSON_SCOPED_THROUGH.items():
        schema_editor.execute(rls_person_enable_sql(table, ownerless_rows=False, through=through))
    for table in APPEND_ONLY:
        schema_editor.execute(rls_append_only_enable_sql(table))


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in APPEND_ONLY:
        schema_editor.execute(rls_append_only_disable_sql(table))
    for table in [*PERSON_SCOPED_THROUGH, *PERSON_SCOPED]:
        schema_editor.execute(rls_person_disable_sql(table))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0006_rls_per_person"),
        ("accounts", "0013_staff_grants"),
        ("privacy", "0017_request_subject_email"),
        ("django_otp_webauthn", "0004_webauthnuserhandle"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
