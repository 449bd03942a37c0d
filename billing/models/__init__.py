from .pricing import BillingProfile, ExchangeRate, MarginRule, Tier

__all__ = ["BillingProfile", "ExchangeRate", "MarginRule", "Tier"]
