from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = "Privacy"

    def ready(self):
        from core.disclosures import register_opt_out_check

        from . import tasks  # noqa: F401  (registers the export tasks the services enqueue by name)
        from .selectors import organization_opted_out

        # Non-essential disclosures (core.disclosures) consult the opt-outs recorded here.
        register_opt_out_check(organization_opted_out)
