from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = "Privacy"

    def ready(self):
        from core.disclosures import register_opt_out_check
        from core.metrics import register_scrape_collector

        from . import tasks  # noqa: F401  (registers the export tasks the services enqueue by name)
        from .selectors import organization_opted_out, request_queue_metrics

        # Non-essential disclosures (core.disclosures) consult the opt-outs recorded here.
        register_opt_out_check(organization_opted_out)
        # The request queue by status and days to due, on /metrics.
        register_scrape_collector("privacy.requests", request_queue_metrics)
