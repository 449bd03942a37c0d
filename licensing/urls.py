"""Dashboard URLs of the licensing app, namespace "licensing", under /o/<org_slug>/."""

from django.urls import include, path

from .views import catalog, onboarding, subscriptions
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
    path("subscriptions/<uuid:pk>/cancel/", subscriptions.CancelSubscription.as_view(), name="subscription_cancel"),
    path("subscriptions/<uuid:pk>/auto-renew/", subscriptions.ToggleAutoRenew.as_view(),
         name="subscription_auto_renew"),
    path("subscriptions/<uuid:pk>/schedule/", subscriptions.ScheduleChange.as_view(), name="subscription_schedule"),
    path("operations/", subscriptions.OperationsPage.as_view(), name="operations"),
    path("operations/<uuid:pk>/", subscriptions.OperationPage.as_view(), name="operation"),
    # Licenses, directory, bulk jobs, usage, renewals, notifications (L2):
    path("", include("licensing.urls_directory")),
]
