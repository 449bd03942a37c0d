"""The models of this app moved down a floor (docs/decisions/009-layers.md).

State only: the tables keep their names and rows; core's (and accounts') first migration
takes the same tables over in the migration state.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("privacy", "0002_encrypt_fieldlock_reason")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="FieldLock"),
                migrations.DeleteModel(name="Disclosure"),
            ],
            database_operations=[],
        ),
    ]
