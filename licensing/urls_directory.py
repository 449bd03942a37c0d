"""Dashboard URLs for licenses, the directory, bulk jobs, usage, renewals and notifications.

Included by ``licensing/urls.py`` inside the "licensing" namespace, under /o/<org_slug>/.
"""

from django.urls import path

from .views import bulk, directory, notifications, usage
from .views import settings as settings_views

urlpatterns = [
    path("licenses/", directory.LicensesPage.as_view(), name="licenses"),
    path("licenses/sync/", directory.DirectorySyncStart.as_view(), name="directory_sync"),
    path("licenses/sync/status/", directory.DirectorySyncStatus.as_view(), name="directory_sync_status"),
    path("licenses/users/", directory.DirectoryUsersPage.as_view(), name="directory_users"),
    path("licenses/users/<uuid:pk>/", directory.DirectoryUserPage.as_view(), name="directory_user"),
    path("licenses/assignments/<uuid:pk>/unassign/", directory.UnassignLicense.as_view(), name="license_unassign"),
    path("licenses/bulk/", bulk.BulkNew.as_view(), name="bulk_new"),
    path("licenses/bulk/selection/", bulk.BulkFromSelection.as_view(), name="bulk_from_selection"),
    path("licenses/bulk/<uuid:pk>/", bulk.BulkJobPage.as_view(), name="bulk_job"),
    path("usage/", usage.UsagePage.as_view(), name="usage"),
    path("usage/inactive/", usage.InactivePage.as_view(), name="inactive"),
    path("usage/inactive/reclaim/", usage.ReclaimLicenses.as_view(), name="reclaim"),
    path("usage/reductions/", usage.ReductionPropose.as_view(), name="reduction_propose"),
    path("usage/reductions/<uuid:pk>/", usage.ReductionDecide.as_view(), name="reduction_decide"),
    # The usage preferences are part of the licensing settings now; the old address still works.
    path("usage/preferences/", settings_views.ReportingPreferencesRedirect.as_view(), name="reporting_preferences"),
    path("usage/export/<slug:report>.csv", usage.ReportExport.as_view(), name="report_export"),
    path("renewals/", usage.RenewalsPage.as_view(), name="renewals"),
    path("notifications/", notifications.NotificationsPage.as_view(), name="notifications"),
    path("notifications/read/", notifications.NotificationsMarkRead.as_view(), name="notifications_read"),
    path("notifications/bell/", notifications.NotificationsBell.as_view(), name="notifications_bell"),
]
