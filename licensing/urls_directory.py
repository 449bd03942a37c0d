"""Dashboard URLs for licenses, the directory, bulk jobs, usage, renewals and notifications.

Included by ``licensing/urls.py`` inside the "licensing" namespace, under /o/<org_slug>/.
"""

from django.urls import path

from . import views_directory as views

urlpatterns = [
    path("licenses/", views.LicensesPage.as_view(), name="licenses"),
    path("licenses/sync/", views.DirectorySyncStart.as_view(), name="directory_sync"),
    path("licenses/sync/status/", views.DirectorySyncStatus.as_view(), name="directory_sync_status"),
    path("licenses/users/", views.DirectoryUsersPage.as_view(), name="directory_users"),
    path("licenses/users/<uuid:pk>/", views.DirectoryUserPage.as_view(), name="directory_user"),
    path("licenses/assignments/<uuid:pk>/unassign/", views.UnassignLicense.as_view(), name="license_unassign"),
    path("licenses/bulk/", views.BulkNew.as_view(), name="bulk_new"),
    path("licenses/bulk/selection/", views.BulkFromSelection.as_view(), name="bulk_from_selection"),
    path("licenses/bulk/<uuid:pk>/", views.BulkJobPage.as_view(), name="bulk_job"),
    path("usage/", views.UsagePage.as_view(), name="usage"),
    path("usage/inactive/", views.InactivePage.as_view(), name="inactive"),
    path("usage/inactive/reclaim/", views.ReclaimLicenses.as_view(), name="reclaim"),
    path("usage/reductions/", views.ReductionPropose.as_view(), name="reduction_propose"),
    path("usage/reductions/<uuid:pk>/", views.ReductionDecide.as_view(), name="reduction_decide"),
    path("usage/preferences/", views.PreferencesPage.as_view(), name="reporting_preferences"),
    path("usage/export/<slug:report>.csv", views.ReportExport.as_view(), name="report_export"),
    path("renewals/", views.RenewalsPage.as_view(), name="renewals"),
    path("notifications/", views.NotificationsPage.as_view(), name="notifications"),
    path("notifications/read/", views.NotificationsMarkRead.as_view(), name="notifications_read"),
    path("notifications/bell/", views.NotificationsBell.as_view(), name="notifications_bell"),
]
