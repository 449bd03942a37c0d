from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Licensing quotes every price through this hook (licensing/pricing.py): billing's price lists.
        from licensing.pricing import register_price_resolver

        from . import tasks  # noqa: F401  (registers the tasks services enqueue by name, in every process)
        from .selectors.pricing import customer_prices

        register_price_resolver(customer_prices)
