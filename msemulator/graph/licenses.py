"""subscribedSkus and license details: seats flow from Partner Center subscriptions (reference §3.1)."""

import re
from datetime import timedelta

from werkzeug.routing import Rule

from ..responses import graph_error, json_response
from ..state import parse_iso
from .common import READ, authorize, odata

SUBSCRIBED_SKU_ID = re.compile(r"^[0-9a-fA-F-]{36}_[0-9a-fA-F-]{36}$")


def subscribed_skus(ctx, tenant_id: str) -> list[dict]:
    tenant = ctx.state.row("SELECT display_name FROM tenants WHERE id = ?", (tenant_id,))
    grace = timedelta(days=int(ctx.settings["licenseGraceDays"]))
    units: dict[str, dict] = {}
    for sub in ctx.state.docs("SELECT doc FROM subscriptions WHERE customer_id = ? AND"
                              " provisioning_id IS NOT NULL", (tenant_id,)):
        entry = units.setdefault(sub["provisioningId"], {"enabled": 0, "suspended": 0, "warning": 0,
                                                          "lockedOut": 0, "subscriptionIds": []})
        if sub["status"] == "active":
            entry["enabled"] += sub["quantity"]
        elif sub["status"] == "suspended":
            entry["suspended"] += sub["quantity"]
        elif sub["status"] == "expired" and parse_iso(sub["expiredAt"]) + grace > ctx.now:
            entry["warning"] += sub["quantity"]
        else:
            continue
        entry["subscriptionIds"].append(sub["id"])
    consumed = {r["sku_id"]: r["n"] for r in ctx.state.rows(
        "SELECT sku_id, COUNT(*) AS n FROM user_licenses WHERE tenant_id = ? GROUP BY sku_id",
        (tenant_id,))}
    result = []
    for sku_id in sorted(set(units) | set(consumed)):
        offer = ctx.catalog.by_provisioning_id.get(sku_id)
        entry = units.get(sku_id, {"enabled": 0, "suspended": 0, "warning": 0, "lockedOut": 0,
                                   "subscriptionIds": []})
        status = ("Enabled" if entry["enabled"] else "Warning" if entry["warning"]
                  else "Suspended" if entry["suspended"] else "LockedOut")
        result.append({
            "accountName": tenant["display_name"] if tenant else "", "accountId": tenant_id,
            "appliesTo": "User", "capabilityStatus": status, "consumedUnits": consumed.get(sku_id, 0),
            "id": f"{tenant_id}_{sku_id}",
            "prepaidUnits": {k: entry[k] for k in ("enabled", "lockedOut", "suspended", "warning")},
            "servicePlans": [{"servicePlanId": p["servicePlanId"],
                              "servicePlanName": p["servicePlanName"],
                              "provisioningStatus": "Success", "appliesTo": "User"}
                             for p in (offer.service_plans if offer else ())],
            "skuId": sku_id, "skuPartNumber": offer.sku_part_number if offer else "",
            "subscriptionIds": entry["subscriptionIds"],
        })
    return result


def _select(ctx, items: list[dict]) -> list[dict]:
    select = ctx.request.args.get("$select")
    if not select:
        return items
    keys = {k.strip() for k in select.split(",")}
    return [{k: v for k, v in item.items() if k in keys} for item in items]


def list_subscribed_skus(ctx):
    tenant_id = authorize(ctx, READ)
    if "$filter" in ctx.request.args:
        raise graph_error(400, "Request_UnsupportedQuery", "Unsupported query.")
    return json_response(odata(ctx, "subscribedSkus", _select(ctx, subscribed_skus(ctx, tenant_id))))


def get_subscribed_sku(ctx, sku_key: str):
    tenant_id = authorize(ctx, READ)
    if not SUBSCRIBED_SKU_ID.match(sku_key):
        raise graph_error(400, "Request_BadRequest", f"Invalid object identifier '{sku_key}'.")
    for item in subscribed_skus(ctx, tenant_id):
        if item["id"].lower() == sku_key.lower():
            return json_response({"@odata.context": f"{ctx.graph_base}/$metadata#subscribedSkus/$entity",
                                  **_select(ctx, [item])[0]})
    raise graph_error(404, "Request_ResourceNotFound", f"Resource '{sku_key}' does not exist.")


def service_plans_for(ctx, sku_id: str, disabled: list[str]) -> list[dict]:
    offer = ctx.catalog.by_provisioning_id.get(sku_id)
    return [{"servicePlanId": p["servicePlanId"], "servicePlanName": p["servicePlanName"],
             "provisioningStatus": "Disabled" if p["servicePlanId"] in disabled else "Success",
             "appliesTo": "User"} for p in (offer.service_plans if offer else ())]


P = "/graph/v1.0"
ROUTES = [
    Rule(f"{P}/subscribedSkus", endpoint=list_subscribed_skus, methods=["GET"]),
    Rule(f"{P}/subscribedSkus/<sku_key>", endpoint=get_subscribed_sku, methods=["GET"]),
]
