from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Licensing"

    def ready(self):
        from core.keys import on_scope_destroyed
        from core.metrics import register_scrape_collector

        from .provisioning import outbox_metrics
        from .services.directory.upsert import directory_users_key_destroyed

        register_scrape_collector("licensing.outbox", outbox_metrics)
        on_scope_destroyed(directory_users_key_destroyed)
