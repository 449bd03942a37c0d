from django.db import migrations

from core.migration_ops import EnableRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        EnableRowLevelSecurity("MicrosoftTenant"),
        EnableRowLevelSecurity("ApiKey"),
    ]
