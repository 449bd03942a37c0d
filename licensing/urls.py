"""Dashboard URLs of the licensing app, namespace "licensing", under /o/<org_slug>/."""

from django.urls import path

from .views import bulk, catalog, directory, notifications, onboarding, subscriptions, usage
from .views import settings as settings_views

app_name = "licensing"

urlpatterns = [
    path("tenant/", onboarding.TenantPage.as_view(), name="tenant"),
    path("tenant/create/", onboarding.TenantCreate.as_view(), name="tenant_create"),
    path("tenant/create/check-domain/", onboarding.TenantDomainCheck.as_view(), name="tenant_domain_check"),
    path("tenant/link/", onboarding.TenantLink.as_view(), name="tenant_link"),
    path("tenant/agreement/", onboarding.TenantAgreement.as_view(), name="tenant_agreement"),
    path("tenant/consent/", onboarding.TenantConsent.as_view(), name="tenant_consent"),
    path("tenant/refresh/", onboarding.TenantRefresh.as_view(), name="tenant_refresh"),
    path("tenant/credentials/done/", onboarding.TenantCredentialsAcknowledge.as_view(), name="tenant_credentials_ack"),
    path("catalog/", catalog.CatalogPage.as_view(), name="catalog"),
    path("catalog/<uuid:pk>/", catalog.ProductPage.as_view(), name="product"),
    path("orders/", catalog.OrdersPage.as_view(), name="orders"),
    path("orders/<uuid:pk>/", catalog.OrderPage.as_view(), name="order"),
    path("orders/<uuid:pk>/<str:decision>/", catalog.OrderDecision.as_view(), name="order_decision"),
    path("licensing-settings/", settings_views.LicensingSettingsPage.as_view(), name="licensing_settings"),
    path("subscriptions/", subscriptions.SubscriptionsPage.as_view(), name="subscriptions"),
    path("subscriptions/<uuid:pk>/", subscriptions.SubscriptionPage.as_view(), name="subscription"),
    path("subscriptions/<uuid:pk>/simulate/", subscriptions.ReductionSimulator.as_view(), name="subscription_simulate"),
    path("subscriptions/<uuid:pk>/quantity/", subscriptions.ChangeQuantity.as_view(), name="subscription_quantity"),
    path("subscriptions/<uuid:pk>/reduce/", subscriptions.ReduceReleasing.as_view(), name="subscription_reduce"),
    path("subscriptions/<uuid:pk>/cancel/", subscriptions.CancelSubscription.as_view(), name="subscription_cancel"),
    path("subscriptions/<uuid:pk>/auto-renew/", subscriptions.ToggleAutoRenew.as_view(),
         name="subscription_auto_renew"),
    path("subscriptions/<uuid:pk>/schedule/", subscriptions.ScheduleChange.as_view(), name="subscription_schedule"),
    path("operations/", subscriptions.OperationsPage.as_view(), name="operations"),
    path("operations/<uuid:pk>/", subscriptions.OperationPage.as_view(), name="operation"),
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
