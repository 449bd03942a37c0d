"""Writes of the billing app: price lists (pricing.py), the billing run and invoices (invoices.py)."""
