"""API routes of the billing app, included under /api/v1/ in the "api" namespace."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("invoices", api.InvoiceViewSet, basename="invoice")
router.register("payment-methods", api.PaymentMethodViewSet, basename="payment-method")

urlpatterns = [
    path("billing-profile/", api.BillingProfileView.as_view(), name="billing-profile"),
    *router.urls,
]
