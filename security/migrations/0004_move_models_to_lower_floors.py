"""The models of this app moved down a floor (docs/decisions/009-layers.md).

State only: the tables keep their names and rows; core's (and accounts') first migration
takes the same tables over in the migration state.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("security", "0003_signinevent_webauthn_factor")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="SignInEvent"),
                migrations.DeleteModel(name="AuditChainHead"),
                migrations.DeleteModel(name="AuditEvent"),
                migrations.DeleteModel(name="DataKey"),
            ],
            database_operations=[],
        ),
    ]
