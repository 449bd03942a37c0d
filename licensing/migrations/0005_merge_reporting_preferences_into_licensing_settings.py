"""One settings row per organisation: ReportingPreferences' fields move into LicensingSettings.

The data step copies every organisation's reporting preferences into its licensing settings
(creating the row where the organisation only had preferences), before the old table goes.
"""

import django.core.validators
from django.db import migrations, models

import licensing.models.settings

REPORTING_FIELDS = ("inactive_days", "reminder_offsets", "email_notifications")


def copy_preferences_into_settings(apps, schema_editor):
    Preferences = apps.get_model("licensing", "ReportingPreferences")
    Settings = apps.get_model("licensing", "LicensingSettings")
    for prefs in Preferences.unscoped_objects.order_by("pk").iterator():
        row = Settings.unscoped_objects.filter(organization_id=prefs.organization_id).first()
        row = row or Settings(organization_id=prefs.organization_id)
        for name in REPORTING_FIELDS:
            setattr(row, name, getattr(prefs, name))
        row.save()


def copy_settings_back_into_preferences(apps, schema_editor):
    Preferences = apps.get_model("licensing", "ReportingPreferences")
    Settings = apps.get_model("licensing", "LicensingSettings")
    for row in Settings.unscoped_objects.order_by("pk").iterator():
        Preferences.unscoped_objects.update_or_create(
            organization_id=row.organization_id, defaults={name: getattr(row, name) for name in REPORTING_FIELDS}
        )


class Migration(migrations.Migration):

    dependencies = [
        ("licensing", "0004_order_idempotency_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="licensingsettings",
            name="email_notifications",
            field=models.BooleanField(default=True),
        ),
        migrations.AddField(
            model_name="licensingsettings",
            name="inactive_days",
            field=models.PositiveSmallIntegerField(default=30),
        ),
        migrations.AddField(
            model_name="licensingsettings",
            name="reminder_offsets",
            field=models.JSONField(default=licensing.models.settings.default_reminder_offsets),
        ),
        migrations.AlterField(
            model_name="licensingsettings",
            name="currency",
            field=models.CharField(default="USD", max_length=3, validators=[django.core.validators.RegexValidator(
                "^[A-Z]{3}$", "Use a three-letter currency code such as USD.")]),
        ),
        migrations.RunPython(copy_preferences_into_settings, copy_settings_back_into_preferences),
        migrations.DeleteModel(
            name="ReportingPreferences",
        ),
    ]
