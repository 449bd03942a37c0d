"""Licensing models, one module per area. Each area module is imported here so Django finds it.

Areas: catalog, subscriptions, provisioning (the outbox), directory, assignments,
usage, notifications, the organisation's licensing settings, and the Microsoft token cache.
"""

from .assignments import AssignmentTally, BulkJob, BulkJobRow, LicenseAssignment  # noqa: F401
from .catalog import Availability, Price, Product, ServicePlan, Sku  # noqa: F401

# Directory, assignments, usage and notifications (L2).
from .directory import DirectorySync, DirectoryUser, TenantSku, inactive_since, last_active  # noqa: F401
from .notifications import Notification, ServiceAnnouncement  # noqa: F401
from .onboarding import CustomerAgreement, GdapRelationship, TenantOnboarding  # noqa: F401
from .provisioning import ProvisioningAttempt, ProvisioningOperation  # noqa: F401
from .settings import LicensingSettings  # noqa: F401
from .subscriptions import Order, SeatBatch, Subscription, SubscriptionEvent  # noqa: F401
from .token_cache import MicrosoftTokenCache  # noqa: F401
from .usage import ReductionProposal, UsageSnapshot  # noqa: F401
