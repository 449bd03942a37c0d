"""Catalog: products, SKUs, availabilities (reference §2.3)."""

from werkzeug.routing import Rule

from ..responses import json_response, pc_error
from .common import collection, require_customer

TARGET_VIEWS = {"OnlineServices", "MicrosoftAzure", "Azure", "AzureReservations", "Software",
                "SoftwareSubscriptions", "SpecializedOffers", "MarketplaceSaaS"}


def _country(ctx) -> str:
    country = ctx.request.args.get("country", "US").upper()
    if country != "US":
        raise pc_error(400, 400030, f"The catalog for country {country} is not available in the "
                                    "emulator; use country=US.")
    return country


def _offer(ctx, product_id: str, sku_id: str | None = None):
    offer = ctx.catalog.by_product.get(product_id)
    if offer is None:
        raise pc_error(404, 400013, f"Product {product_id} not found.")
    if sku_id is not None and sku_id != offer.sku_id:
        raise pc_error(404, 400018, f"Sku {sku_id} not found for product {product_id}.")
    return offer


def list_products(ctx, customer_id: str | None = None):
    if customer_id:
        require_customer(ctx, customer_id)
    country = _country(ctx)
    view = ctx.request.args.get("targetView")
    if not view:
        raise pc_error(400, 800002, "Invalid request input: targetView is required.")
    if view not in TARGET_VIEWS:
        raise pc_error(403, 400036, f"The target view {view} is not allowed.")
    segment = ctx.request.args.get("targetSegment", "commercial").lower()
    offers = [o for o in ctx.catalog.offers if o.target_view == view] if segment == "commercial" else []
    items = [ctx.catalog.product_json(o, country) for o in offers]
    return json_response(collection(items, f"/products?country={country}&targetView={view}"))


def get_product(ctx, product_id: str):
    return json_response(ctx.catalog.product_json(_offer(ctx, product_id), _country(ctx)))


def list_skus(ctx, product_id: str, customer_id: str | None = None):
    if customer_id:
        require_customer(ctx, customer_id)
    country = _country(ctx)
    offer = _offer(ctx, product_id)
    return json_response(collection([ctx.catalog.sku_json(offer, country)],
                                    f"/products/{product_id}/skus?country={country}"))


def get_sku(ctx, product_id: str, sku_id: str):
    return json_response(ctx.catalog.sku_json(_offer(ctx, product_id, sku_id), _country(ctx)))


def list_availabilities(ctx, product_id: str, sku_id: str, customer_id: str | None = None):
    if customer_id:
        require_customer(ctx, customer_id)
    country = _country(ctx)
    offer = _offer(ctx, product_id, sku_id)
    return json_response(collection([ctx.catalog.availability_json(offer, country)],
                                    f"/products/{product_id}/skus/{sku_id}/availabilities?country={country}"))


def get_availability(ctx, product_id: str, sku_id: str, availability_id: str):
    offer = _offer(ctx, product_id, sku_id)
    if availability_id != offer.availability_id:
        raise pc_error(404, 400019, f"Availability {availability_id} not found.")
    return json_response(ctx.catalog.availability_json(offer, _country(ctx)))


P = "/partnercenter/v1"
C = f"{P}/customers/<customer_id>"
ROUTES = [
    Rule(f"{P}/products", endpoint=list_products, methods=["GET"]),
    Rule(f"{P}/products/<product_id>", endpoint=get_product, methods=["GET"]),
    Rule(f"{P}/products/<product_id>/skus", endpoint=list_skus, methods=["GET"]),
    Rule(f"{P}/products/<product_id>/skus/<sku_id>", endpoint=get_sku, methods=["GET"]),
    Rule(f"{P}/products/<product_id>/skus/<sku_id>/availabilities", endpoint=list_availabilities,
         methods=["GET"]),
    Rule(f"{P}/products/<product_id>/skus/<sku_id>/availabilities/<availability_id>",
         endpoint=get_availability, methods=["GET"]),
    Rule(f"{C}/products", endpoint=list_products, methods=["GET"]),
    Rule(f"{C}/products/<product_id>/skus", endpoint=list_skus, methods=["GET"]),
    Rule(f"{C}/products/<product_id>/skus/<sku_id>/availabilities", endpoint=list_availabilities,
         methods=["GET"]),
]
