"""Dashboard URLs of the billing app, namespace "billing", under /o/<org_slug>/billing/."""

from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("", views.BillingOverview.as_view(), name="overview"),
    path("invoices/", views.InvoiceList.as_view(), name="invoices"),
    path("invoices/<uuid:pk>/", views.InvoiceDetail.as_view(), name="invoice"),
    path("invoices/<uuid:pk>/print/", views.InvoicePrint.as_view(), name="invoice_print"),
    path("invoices/<uuid:pk>/csv/", views.InvoiceCsv.as_view(), name="invoice_csv"),
    path("invoices/<uuid:pk>/pdf/", views.InvoicePdf.as_view(), name="invoice_pdf"),
    path("invoices/<uuid:pk>/pay/", views.PayInvoice.as_view(), name="invoice_pay"),
    path("payment-methods/", views.PaymentMethods.as_view(), name="payment_methods"),
    path("payment-methods/add/", views.AddCard.as_view(), name="add_card"),
    path("payment-methods/added/", views.CardAdded.as_view(), name="card_added"),
    path("payment-methods/<uuid:pk>/remove/", views.RemoveCard.as_view(), name="remove_card"),
    path("reconciliation.csv", views.ReconciliationExport.as_view(), name="reconciliation_export"),
]
