from django.apps import AppConfig


class BenchAppConfig(AppConfig):
    """Models used only by benchmarks; installed only by benchmarks/settings.py."""

    name = "benchmarks.benchapp"
    label = "benchapp"
    default_auto_field = "django.db.models.BigAutoField"
