from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("products", api.ProductViewSet, basename="product")
router.register("subscriptions", api.SubscriptionViewSet, basename="subscription")
router.register("provisioning-operations", api.ProvisioningOperationViewSet, basename="provisioning-operation")

urlpatterns = [
    *router.urls,
    # L2 (directory users, license assignments, usage, renewals) adds its routes below this line:
    path("", include("licensing.api_directory_urls")),  # L2: directory, assignments, bulk, usage, renewals
]
