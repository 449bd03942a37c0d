"""Licensing: tenants, catalog, subscriptions, directory, assignments, usage (README "Layout").

Hooks a higher floor fills: the customer's price for an offer comes from the resolver registered in
``licensing.pricing`` (billing registers its price lists in ``billing.apps.BillingConfig.ready()``).
"""
