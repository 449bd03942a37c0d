"""API routes of the licensing app, included under /api/v1/ in the "api" namespace."""

from rest_framework.routers import SimpleRouter

from . import core, directory, directory_users

router = SimpleRouter()
router.register("products", core.ProductViewSet, basename="product")
router.register("subscriptions", core.SubscriptionViewSet, basename="subscription")
router.register("provisioning-operations", core.ProvisioningOperationViewSet, basename="provisioning-operation")
router.register("directory-users", directory.DirectoryUserViewSet, basename="directory-user")
router.register("directory-user-operations", directory_users.DirectoryUserOperationViewSet,
                basename="directory-user-operation")
router.register("directory-syncs", directory.DirectorySyncViewSet, basename="directory-sync")
router.register("license-assignments", directory.LicenseAssignmentViewSet, basename="license-assignment")
router.register("license-bulk-jobs", directory.BulkJobViewSet, basename="license-bulk-job")
router.register("usage", directory.UsageReportViewSet, basename="usage")
router.register("renewals", directory.RenewalViewSet, basename="renewal")

urlpatterns = router.urls
