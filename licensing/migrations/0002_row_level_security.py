from django.db import migrations

from core.migration_ops import EnableRowLevelSecurity

# Tenant tables holding personal data or credentials (see the privacy registry).
PROTECTED = [
    "ProvisioningOperation",
    "ProvisioningAttempt",
    "TenantOnboarding",
    "CustomerAgreement",
    "DirectoryUser",
    "LicenseAssignment",
    "BulkJobRow",
    "Notification",
]


class Migration(migrations.Migration):
    dependencies = [("licensing", "0001_initial")]

    operations = [EnableRowLevelSecurity(model) for model in PROTECTED]
