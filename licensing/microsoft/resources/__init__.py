"""Typed results of Partner Center and Graph calls.

Each keeps the fields the portal reads as typed attributes and the whole JSON object in ``raw``
(Partner Center PATCHes need the full object back, and new fields should not need a release).
Money stays Decimal: JSON numbers are parsed from their text, never through float.

- partner_center: customers, agreements, catalog, carts and orders, subscriptions, fraud events;
- graph: subscribed SKUs, directory users, license changes and $batch results, GDAP, billing exports;
- parsing: how both read Microsoft's JSON (times, money, either-case keys).
"""

from .graph import (  # noqa: F401
    BatchItemResult,
    DirectoryUser,
    ExportManifest,
    GdapAccessAssignment,
    GdapRelationship,
    LicenseChange,
    LicenseDetail,
    SubscribedSku,
)
from .parsing import parse_datetime  # noqa: F401
from .partner_center import (  # noqa: F401
    Address,
    Agreement,
    Availability,
    Cart,
    CartLine,
    CheckoutResult,
    Customer,
    FraudEvent,
    Order,
    OrderLine,
    Product,
    Sku,
    Subscription,
    Term,
    Transition,
)
