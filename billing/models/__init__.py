from .invoices import DunningReminder, ImmutableError, Invoice, InvoiceLine, InvoiceSequence, TaxRate
from .payments import Payment, PaymentMethod, Refund
from .pricing import BillingProfile, ExchangeRate, MarginRule, Tier
from .reconciliation import MicrosoftLineItem, ReconciliationFinding, ReconciliationRun

__all__ = [
    "BillingProfile", "DunningReminder", "ExchangeRate", "ImmutableError", "Invoice", "InvoiceLine", "InvoiceSequence",
    "MarginRule", "MicrosoftLineItem", "Payment", "PaymentMethod", "ReconciliationFinding", "ReconciliationRun",
    "Refund", "TaxRate", "Tier",
]
