"""Reads of the billing app: prices (pricing.py) and invoices (invoices.py)."""
