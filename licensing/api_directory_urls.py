"""API routes for directory users and sync, license assignments, bulk jobs, usage and renewals (/api/v1/)."""

from rest_framework.routers import SimpleRouter

from . import api_directory as api

router = SimpleRouter()
router.register("directory-users", api.DirectoryUserViewSet, basename="directory-user")
router.register("directory-syncs", api.DirectorySyncViewSet, basename="directory-sync")
router.register("license-assignments", api.LicenseAssignmentViewSet, basename="license-assignment")
router.register("license-bulk-jobs", api.BulkJobViewSet, basename="license-bulk-job")
router.register("usage", api.UsageReportViewSet, basename="usage")
router.register("renewals", api.RenewalViewSet, basename="renewal")

urlpatterns = router.urls
