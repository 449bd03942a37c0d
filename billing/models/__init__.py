from .invoices import ImmutableError, Invoice, InvoiceLine, InvoiceSequence, TaxRate
from .pricing import BillingProfile, ExchangeRate, MarginRule, Tier

__all__ = [
    "BillingProfile", "ExchangeRate", "ImmutableError", "Invoice", "InvoiceLine", "InvoiceSequence",
    "MarginRule", "TaxRate", "Tier",
]
