from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Licensing"

    def ready(self):
        from core.metrics import register_scrape_collector

        from .provisioning import outbox_metrics

        register_scrape_collector("licensing.outbox", outbox_metrics)
