"""Catalog sync from Partner Center, and the price a customer pays (through the hook in licensing.pricing,
which billing fills with its price lists)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from licensing import pricing
from licensing.microsoft.client import default_client
from licensing.models import Availability, Price, Product, ServicePlan, Sku

# Title prefixes -> family shown in the catalog filter; first match wins.
FAMILIES = (
    ("Microsoft 365 Copilot", "Copilot"),
    ("Microsoft 365", "Microsoft 365"),
    ("Office 365", "Office 365"),
    ("Exchange", "Exchange"),
    ("Microsoft Teams", "Teams"),
    ("Microsoft Entra", "Security and identity"),
    ("Microsoft Intune", "Security and identity"),
    ("Power BI", "Power Platform"),
    ("Power ", "Power Platform"),
    ("Visio", "Project and Visio"),
    ("Project", "Project and Visio"),
    ("Dynamics 365", "Dynamics 365"),
    ("Azure", "Azure"),
)


def family_of(title: str) -> str:
    return next((family for prefix, family in FAMILIES if title.startswith(prefix)), "Other")


def customer_unit_price(*, organization, price: Price) -> Decimal | None:
    """What the organisation pays per seat and billing period, in :func:`customer_currency`.

    The amount comes from the resolver registered in :mod:`licensing.pricing` (billing's price
    lists); without one, Microsoft's list price plus the default margin.
    """
    quoted = pricing.customer_price(organization=organization, price=price)
    return None if quoted is None else quoted.amount


def customer_currency(*, organization, price: Price) -> str:
    """The currency :func:`customer_unit_price` is in (the organisation's billing currency)."""
    quoted = pricing.customer_price(organization=organization, price=price)
    return price.currency if quoted is None else quoted.currency


@dataclass
class CatalogSyncResult:
    products: int = 0
    skus: int = 0
    availabilities: int = 0
    prices: int = 0
    service_plans: int = 0
    deactivated: int = 0


def _price_index(rows) -> dict[tuple[str, str, str, str], Decimal]:
    index = {}
    for row in rows:
        try:
            amount = Decimal(row.get("UnitPrice") or "")
        except InvalidOperation:
            continue
        key = (row.get("ProductId", ""), row.get("SkuId", ""), row.get("TermDuration", ""),
               (row.get("BillingPlan") or "").lower())
        index[key] = amount
    return index


def catalog_sync(*, country: str = "US") -> CatalogSyncResult:
    """Mirror Partner Center's license catalog and price sheet. Idempotent; offers that disappear are deactivated."""
    pc = default_client().partner_center
    prices = _price_index(pc.iter_price_sheet(market=country))
    result = CatalogSyncResult()
    seen_products, seen_availabilities = set(), set()
    now = timezone.now()
    for remote_product in pc.list_products(country=country, target_view="OnlineServices"):
        skus = pc.list_skus(product_id=remote_product.id, country=country)
        with transaction.atomic():
            product, _ = Product.objects.update_or_create(
                product_id=remote_product.id,
                defaults={
                    "title": remote_product.title,
                    "description": remote_product.raw.get("description", ""),
                    "family": family_of(remote_product.title),
                    "product_type": remote_product.product_type,
                    "target_view": "OnlineServices",
                    "publisher": remote_product.raw.get("publisherName", ""),
                    "is_active": True,
                    "synced_at": now,
                },
            )
            seen_products.add(product.pk)
            result.products += 1
        for remote_sku in skus:
            availabilities = pc.list_availabilities(product_id=remote_product.id, sku_id=remote_sku.id,
                                                    country=country)
            with transaction.atomic():
                dynamic = remote_sku.raw.get("dynamicAttributes") or {}
                sku, _ = Sku.objects.update_or_create(
                    product=product, sku_id=remote_sku.id,
                    defaults={
                        "title": remote_sku.title,
                        "description": remote_sku.raw.get("description", ""),
                        "provisioning_id": remote_sku.provisioning_id,
                        "minimum_quantity": remote_sku.minimum_quantity,
                        "maximum_quantity": remote_sku.maximum_quantity or remote_sku.minimum_quantity,
                        "is_trial": remote_sku.is_trial,
                        "is_addon": bool(dynamic.get("isAddon", False)),
                        "billing_cycles": remote_sku.raw.get("supportedBillingCycles") or [],
                        "upgrade_targets": dynamic.get("upgradeTargetOffers") or [],
                        "is_active": True,
                    },
                )
                result.skus += 1
                for remote in availabilities:
                    availability, _ = Availability.objects.update_or_create(
                        catalog_item_id=remote.catalog_item_id,
                        defaults={
                            "sku": sku, "availability_id": remote.id, "country": country,
                            "segment": remote.raw.get("segment", "commercial"), "currency": remote.currency or "USD",
                            "is_purchasable": remote.is_purchasable,
                            "is_renewable": bool(remote.raw.get("isRenewable", True)), "is_active": True,
                        },
                    )
                    seen_availabilities.add(availability.pk)
                    result.availabilities += 1
                    seen_terms = set()
                    for raw_term in remote.raw.get("terms") or []:
                        term, cycle = raw_term.get("duration", ""), (raw_term.get("billingCycle") or "").lower()
                        if term not in Price.Term.values or cycle not in Price.BillingCycle.values:
                            continue
                        refund = _refund_option(raw_term)
                        price, _ = Price.objects.update_or_create(
                            availability=availability, term_duration=term, billing_cycle=cycle,
                            defaults={
                                "term_id": raw_term.get("id", ""),
                                "list_price": prices.get((remote_product.id, remote_sku.id, term, cycle)),
                                "currency": remote.currency or "USD",
                                "cancellation_window": refund.get("expiresAfter", ""),
                                "refund_type": refund.get("type", ""),
                                "is_active": True,
                            },
                        )
                        seen_terms.add(price.pk)
                        result.prices += 1
                    availability.prices.exclude(pk__in=seen_terms).update(is_active=False)
    with transaction.atomic():
        result.deactivated = Product.objects.filter(is_active=True).exclude(pk__in=seen_products).update(
            is_active=False
        )
        Availability.objects.filter(is_active=True).exclude(pk__in=seen_availabilities).update(is_active=False)
        audit_record(actor=Actor.system("catalog_sync"), action="catalog.synced",
                     metadata={"products": result.products, "prices": result.prices,
                               "deactivated": result.deactivated})
    result.service_plans = service_plans_sync()
    return result


def service_plans_sync() -> int:
    """Friendly names of every service plan, from Microsoft's product names file. One upsert; idempotent."""
    downloads = default_client().downloads
    if downloads is None:
        return 0
    rows = [ServicePlan(service_plan_id=plan.service_plan_id, name=plan.name[:200],
                        friendly_name=plan.friendly_name[:300]) for plan in downloads.service_plans()]
    with transaction.atomic():
        ServicePlan.objects.bulk_create(rows, batch_size=500, update_conflicts=True,
                                        unique_fields=["service_plan_id"], update_fields=["name", "friendly_name"])
    return len(rows)


def _refund_option(raw_term: dict) -> dict:
    """The option that ends the cancellation window: the last in sequence (Full for P1D, then Partial for P7D)."""
    options = [option for policy in raw_term.get("cancellationPolicies") or []
               for option in policy.get("refundOptions") or []]
    if not options:
        return {}
    return max(enumerate(options), key=lambda pair: (pair[1].get("sequenceId", pair[0]), pair[0]))[1]
