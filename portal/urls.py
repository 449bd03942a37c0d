"""The wiring: the only module that names every app's URLs."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"

# Pages of one organisation: /o/<org_slug>/...
organization_patterns = [
    path("", include("portal.dashboard_urls")),
    path("team/", include("accounts.org_urls")),
    path("security/", include("security.org_urls")),
    path("", include("licensing.urls")),
    path("billing/", include("billing.urls")),
]

api_v1_patterns = [
    path("", include("accounts.api_urls")),
    path("", include("licensing.api.urls")),
    path("", include("billing.api_urls")),
    path("", include("privacy.api_urls")),
]

urlpatterns = [
    path("", include("portal.site_urls")),
    path("accounts/", include("accounts.urls")),
    path("privacy/", include("privacy.urls")),
    path(".well-known/", include("privacy.well_known_urls")),
    path("o/<slug:org_slug>/", include(organization_patterns)),
    path("api/v1/", include((api_v1_patterns, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

if settings.BILLING_TEST_GATEWAY_ENABLED:
    # The local card processor's hosted page (billing/gateway.py); never mounted in production.
    urlpatterns.append(path("test-gateway/", include("billing.test_gateway_urls")))
