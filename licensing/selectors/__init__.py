"""Reads of the licensing app, tenant-scoped, one module per area.

- core: catalog, tenant onboarding state, orders, subscriptions, provisioning operations;
- usage: seats, usage, waste and renewals;
- directory: directory users, assignments, bulk jobs, notifications;
- settings: the organisation's licensing settings.

The core reads and the settings are re-exported here (``from licensing import selectors``).
"""

from .core import (  # noqa: F401
    SUBSCRIPTION_SORTS,
    agreements,
    assigned_by_subscription,
    catalog_families,
    catalog_products,
    gdap_relationships,
    has_timeline,
    onboarding_of,
    operation_timeline,
    operations_for,
    orders_for,
    pending_operation_for,
    product_offers,
    subscription_events,
    subscriptions_for,
    tenant_of,
)
from .settings import licensing_settings  # noqa: F401
