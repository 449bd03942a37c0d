"""The licensing REST API (/api/v1/), one module per area; ``urls`` routes them all.

- core: catalog products, subscriptions (buy, change, cancel, schedule), provisioning operations;
- directory: directory users and syncs, license assignments, bulk jobs, usage, renewals.

Thin: serializers parse and present, services decide. POSTs honour ``Idempotency-Key``.
"""

from .core import (  # noqa: F401
    CONFLICT_CODES,
    AcceptedSerializer,
    ChangeInputSerializer,
    OfferSerializer,
    OperationSerializer,
    ProductSerializer,
    ProductViewSet,
    ProvisioningOperationViewSet,
    PurchaseInputSerializer,
    PurchaseResultSerializer,
    ScheduleInputSerializer,
    SeatBatchSerializer,
    SubscriptionSerializer,
    SubscriptionViewSet,
    service_error,
)
from .directory import (  # noqa: F401
    BulkJobViewSet,
    DirectorySyncViewSet,
    DirectoryUserViewSet,
    LicenseAssignmentViewSet,
    RenewalViewSet,
    UsageReportViewSet,
)
