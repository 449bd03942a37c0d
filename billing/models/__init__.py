from .invoices import ImmutableError, Invoice, InvoiceLine, InvoiceSequence, TaxRate
from .pricing import BillingProfile, ExchangeRate, MarginRule, Tier
from .reconciliation import MicrosoftLineItem, ReconciliationFinding, ReconciliationRun

__all__ = [
    "BillingProfile", "ExchangeRate", "ImmutableError", "Invoice", "InvoiceLine", "InvoiceSequence",
    "MarginRule", "MicrosoftLineItem", "ReconciliationFinding", "ReconciliationRun", "TaxRate", "Tier",
]
