"""The models of this app moved down a floor (docs/decisions/009-layers.md).

State only: the tables keep their names and rows; core's (and accounts') first migration
takes the same tables over in the migration state.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("portal", "0002_idempotency_key_per_caller")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="IdempotencyRecord"),
            ],
            database_operations=[],
        ),
    ]
