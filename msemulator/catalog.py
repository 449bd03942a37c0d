"""New Commerce catalog loaded from data/catalog.json (built by tools/build_catalog.py)."""

import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "catalog.json"

TERM_MONTHS = {"P1M": 1, "P1Y": 12, "P3Y": 36}
# Billing cycles a term allows (reference §2.5 "Terms/billing").
TERM_BILLING = {"P1M": ("monthly",), "P1Y": ("monthly", "annual"),
                "P3Y": ("monthly", "annual", "triennial")}
CYCLE_MONTHS = {"monthly": 1, "annual": 12, "triennial": 36}
CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Offer:
    product_id: str
    sku_id: str
    availability_id: str
    title: str
    description: str
    target_view: str
    product_type: dict
    sku_part_number: str = ""
    provisioning_id: str = ""
    service_plans: tuple = ()
    terms: tuple = ()
    minimum_quantity: int = 1
    maximum_quantity: int = 1
    base_price: Decimal = Decimal(0)
    upgrade_targets: tuple = field(default=())

    @property
    def catalog_item_id(self) -> str:
        return f"{self.product_id}:{self.sku_id}:{self.availability_id}"

    @property
    def is_azure_plan(self) -> bool:
        return self.target_view == "MicrosoftAzure"

    def unit_price(self, term: str, billing_cycle: str) -> Decimal:
        """Price of one seat for one billing period.

        New Commerce: a monthly term costs 20% more than an annual one; monthly billing of an
        annual (or triennial) term costs 5% more than paying for the period up front.
        """
        monthly = self.base_price
        if term == "P1M":
            return money(monthly * Decimal("1.2"))
        if billing_cycle == "monthly":
            return money(monthly * Decimal("1.05"))
        return money(monthly * CYCLE_MONTHS[billing_cycle])


class Catalog:
    def __init__(self, path: Path = DATA):
        raw = json.loads(path.read_text(encoding="utf-8"))
        offers = [
            Offer(product_id=p["productId"], sku_id=p["skuId"], availability_id=p["availabilityId"],
                  title=p["title"], description=p["description"], target_view="OnlineServices",
                  product_type={"id": "OnlineServicesNCE", "displayName": "OnlineServicesNCE"},
                  sku_part_number=p["skuPartNumber"], provisioning_id=p["provisioningId"],
                  service_plans=tuple(p["servicePlans"]), terms=tuple(p["terms"]),
                  minimum_quantity=p["minimumQuantity"], maximum_quantity=p["maximumQuantity"],
                  base_price=Decimal(p["annualTermMonthlyPriceUsd"]),
                  upgrade_targets=tuple(p["upgradeTargets"]))
            for p in raw["products"]
        ]
        azure = raw["azurePlan"]
        offers.append(Offer(product_id=azure["productId"], sku_id=azure["skuId"],
                            availability_id=azure["availabilityId"], title=azure["title"],
                            description=azure["description"], target_view=azure["targetView"],
                            product_type=azure["productType"], maximum_quantity=1))
        self.offers = offers
        self.by_product = {o.product_id: o for o in offers}
        self.by_provisioning_id = {o.provisioning_id: o for o in offers if o.provisioning_id}

    def offer(self, catalog_item_id: str) -> Offer | None:
        parts = catalog_item_id.split(":")
        offer = self.by_product.get(parts[0])
        if offer is None or len(parts) < 2 or parts[1] != offer.sku_id:
            return None
        if len(parts) == 3 and parts[2] != offer.availability_id:
            return None
        return offer if len(parts) in (2, 3) else None

    # -- Partner Center renderings (product-resources.md) ---------------------------------
    def product_json(self, offer: Offer, country: str) -> dict:
        return {
            "id": offer.product_id, "title": offer.title, "description": offer.description,
            "productType": offer.product_type, "isMicrosoftProduct": True,
            "publisherName": "Microsoft Corporation",
            "links": {
                "skus": {"uri": f"/products/{offer.product_id}/skus?country={country}",
                         "method": "GET", "headers": []},
                "self": {"uri": f"/products/{offer.product_id}?country={country}",
                         "method": "GET", "headers": []},
            },
            "attributes": {"objectType": "Product"},
        }

    def sku_json(self, offer: Offer, country: str) -> dict:
        cycles = sorted({c for t in offer.terms for c in TERM_BILLING[t]}) if offer.terms else ["monthly"]
        return {
            "id": offer.sku_id, "productId": offer.product_id, "title": offer.title,
            "description": offer.description,
            "minimumQuantity": offer.minimum_quantity, "maximumQuantity": offer.maximum_quantity,
            "isTrial": False, "supportedBillingCycles": cycles,
            "purchasePrerequisites": ["MicrosoftCustomerAgreement"],
            "inventoryVariables": [], "provisioningVariables": [],
            "actions": ["Refund"] if offer.terms else [],
            "dynamicAttributes": {
                "isMicrosoftProduct": True, "hasConstraints": True, "isAddon": False,
                "prerequisiteSkus": [], "upgradeTargetOffers": list(offer.upgrade_targets),
                "provisioningId": offer.provisioning_id,
            },
            "links": {"availabilities": {
                "uri": f"/products/{offer.product_id}/skus/{offer.sku_id}/availabilities?country={country}",
                "method": "GET", "headers": []}},
            "attributes": {"objectType": "Sku"},
        }

    def availability_json(self, offer: Offer, country: str) -> dict:
        terms = []
        for term in offer.terms:
            for cycle in TERM_BILLING[term]:
                terms.append({
                    "id": f"{term.lower()}{cycle[:3]}", "duration": term,
                    "description": f"{term} commitment, {cycle} billing",
                    "billingCycle": cycle.capitalize(),
                    "cancellationPolicies": [{"refundOptions": [
                        {"sequenceId": 0, "type": "Full", "expiresAfter": "P1D"},
                        {"sequenceId": 1, "type": "Partial", "expiresAfter": "P7D"}]}],
                })
        term_ids = [t["id"] for t in terms]
        return {
            "id": offer.availability_id, "productId": offer.product_id, "skuId": offer.sku_id,
            "catalogItemId": offer.catalog_item_id,
            "defaultCurrency": {"code": "USD", "symbol": "$"}, "segment": "commercial",
            "country": country, "isPurchasable": True, "isRenewable": bool(offer.terms),
            "renewalInstructions": [{"applicableTermIds": term_ids, "renewalOptions": [
                {"renewToId": f"{offer.product_id}:{offer.sku_id}", "isAutoRenewable": True}]}]
            if offer.terms else [],
            "terms": terms,
            "links": {"self": {
                "uri": f"/products/{offer.product_id}/skus/{offer.sku_id}/availabilities/"
                       f"{offer.availability_id}?country={country}",
                "method": "GET", "headers": []}},
            "attributes": {"objectType": "Availability"},
        }


@cache
def load_catalog() -> Catalog:
    return Catalog()
