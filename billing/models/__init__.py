from .invoices import ImmutableError, Invoice, InvoiceLine, InvoiceSequence, TaxRate
from .payments import Payment, PaymentMethod
from .pricing import BillingProfile, ExchangeRate, MarginRule, Tier
from .reconciliation import MicrosoftLineItem, ReconciliationFinding, ReconciliationRun

__all__ = [
    "BillingProfile", "ExchangeRate", "ImmutableError", "Invoice", "InvoiceLine", "InvoiceSequence",
    "MarginRule", "MicrosoftLineItem", "Payment", "PaymentMethod", "ReconciliationFinding", "ReconciliationRun",
    "TaxRate", "Tier",
]
