"""Price-list writes: margin rules, exchange rates and billing profiles. Staff and owners call these."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from billing.models import BillingProfile, ExchangeRate, MarginRule, TaxRate, Tier
from billing.money import validate_currency
from core.audit import Actor, audit_record


def _rule_metadata(rule: MarginRule) -> dict:
    return {"customer": str(rule.customer_id or ""), "tier": rule.tier, "family": rule.product_family,
            "margin_percent": str(rule.margin_percent), "effective_from": rule.effective_from.isoformat(),
            "effective_to": rule.effective_to.isoformat() if rule.effective_to else None}


@transaction.atomic
def margin_rule_save(*, actor: Actor, rule: MarginRule) -> MarginRule:
    """Create or change a margin rule. Quotes already given (orders, subscriptions) keep their price."""
    created = rule._state.adding
    rule.full_clean()
    rule.save()
    audit_record(actor=actor, action="billing.margin_rule_created" if created else "billing.margin_rule_changed",
                 organization=rule.customer_id, target=rule, metadata=_rule_metadata(rule))
    return rule


@transaction.atomic
def margin_rule_delete(*, actor: Actor, rule: MarginRule) -> None:
    metadata = _rule_metadata(rule)
    audit_record(actor=actor, action="billing.margin_rule_deleted", organization=rule.customer_id, target=rule,
                 metadata=metadata)
    rule.delete()


@transaction.atomic
def exchange_rate_save(*, actor: Actor, rate: ExchangeRate) -> ExchangeRate:
    for code in (rate.base, rate.quote):
        validate_currency(code)
    rate.full_clean()
    rate.save()
    audit_record(actor=actor, action="billing.exchange_rate_saved", target=rate,
                 metadata={"base": rate.base, "quote": rate.quote, "rate": str(rate.rate),
                           "effective_from": rate.effective_from.isoformat()})
    return rate


@transaction.atomic
def tax_rate_save(*, actor: Actor, rate: TaxRate) -> TaxRate:
    rate.country, rate.region = rate.country.upper(), rate.region.upper()
    rate.full_clean()
    rate.save()
    audit_record(actor=actor, action="billing.tax_rate_saved", target=rate,
                 metadata={"country": rate.country, "region": rate.region, "rate_percent": str(rate.rate_percent),
                           "effective_from": rate.effective_from.isoformat()})
    return rate


_UNSET = object()


@transaction.atomic
def billing_profile_update(
    *, organization, actor: Actor, currency: str | None = None, tier: str | None = None,
    payment_terms_days: int | None = None, tax_exempt: bool | None = None, contacts=_UNSET,
) -> BillingProfile:
    """Change how an organisation is billed. Arguments left out keep their value.

    Changing the currency affects new quotes and new invoices only: subscriptions keep the price
    (and currency) they were bought at, as Microsoft price-protects them for the term.
    """
    profile, _ = BillingProfile.objects.select_for_update().get_or_create(organization=organization)
    changed = []
    if currency is not None and currency != profile.currency:
        try:
            validate_currency(currency)
        except ValidationError as exc:
            raise ValidationError({"currency": exc.messages}) from None
        profile.currency, _ = currency, changed.append("currency")
    if tier is not None and tier != profile.tier:
        if tier not in Tier.values:
            raise ValidationError({"tier": f"Unknown tier {tier!r}."})
        profile.tier, _ = tier, changed.append("tier")
    if payment_terms_days is not None and payment_terms_days != profile.payment_terms_days:
        profile.payment_terms_days, _ = payment_terms_days, changed.append("payment_terms_days")
    if tax_exempt is not None and tax_exempt != profile.tax_exempt:
        profile.tax_exempt, _ = tax_exempt, changed.append("tax_exempt")
    if contacts is not _UNSET:
        profile.contacts, _ = _clean_contacts(contacts), changed.append("contacts")
    profile.full_clean()
    profile.save()
    if changed:
        audit_record(actor=actor, action="billing.profile_changed", organization=organization, target=profile,
                     metadata={"changed": changed})
    return profile


def _clean_contacts(contacts) -> list[dict]:
    cleaned = []
    for entry in contacts or []:
        name = str(entry.get("name", "")).strip()[:150]
        email = str(entry.get("email", "")).strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationError({"contacts": f"{email or 'An empty address'} is not an email address."}) from None
        cleaned.append({"name": name, "email": email})
    return cleaned
