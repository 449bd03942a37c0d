"""API routes of the billing app, included under /api/v1/ in the "api" namespace."""

from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("invoices", api.InvoiceViewSet, basename="invoice")
router.register("payment-methods", api.PaymentMethodViewSet, basename="payment-method")

urlpatterns = router.urls
