"""Partner billing export: async unbilled/billed Azure usage (reference §2.9 "Current (GA)").

POST .../usage/{unbilled|billed}/export -> 202 + Location; GET operations/{id} (running N polls,
then succeeded); GET manifests/{id}; blobs (gzip JSON lines) served by the emulator itself."""

import gzip
import hashlib
import hmac
import json
import random
from datetime import timedelta

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from ..partner_center.common import new_id
from ..responses import graph_error, json_response
from ..state import iso, parse_iso
from .common import require_partner_tenant

ROLE = "PartnerBilling.Read.All"
METERS = [("Virtual Machines", "D2s v5", "D2s v5 Linux", "1 Hour", "0.096"),
          ("Storage", "Standard SSD Managed Disks", "E10 LRS Disk", "1/Month", "0.0032"),
          ("Bandwidth", "Inter-Region", "Data Transfer Out", "1 GB", "0.02")]
FULL_ONLY = {"MeterCategory", "MeterName", "MeterRegion", "ProductName", "ResourceGroup",
             "ResourceLocation", "Tags", "Unit"}
BLOB_NAME = "part-00000.json.gz"


def _usage_rows(ctx, start, end, invoice_number: str, full: bool) -> list[dict]:
    rows = []
    for sub in ctx.state.docs("SELECT doc FROM subscriptions WHERE provisioning_id IS NULL"):
        customer = ctx.state.doc("SELECT doc FROM customers WHERE id = ?", (sub["customerId"],))
        day = max(start, parse_iso(sub["creationDate"])).replace(hour=0, minute=0, second=0)
        while day + timedelta(days=1) <= end:
            rng = random.Random(f"{sub['id']}{day.date()}")
            for category, subcategory, meter, unit, price in METERS:
                quantity = round(rng.uniform(1, 24), 4)
                total = round(quantity * float(price), 6)
                row = {"PartnerId": ctx.partner.tenant_id, "CustomerId": sub["customerId"],
                       "CustomerName": customer["companyProfile"]["companyName"],
                       "InvoiceNumber": invoice_number, "ProductId": "DZH318Z0BQ5S",
                       "SkuId": "0001", "SkuName": subcategory, "ProductName": category,
                       "SubscriptionId": sub["azureEntitlementId"], "EntitlementId": sub["azureEntitlementId"],
                       "ChargeType": "Usage", "UsageDate": iso(day),
                       "ChargeStartDate": iso(start), "ChargeEndDate": iso(end),
                       "MeterCategory": category, "MeterName": meter, "MeterRegion": "US East",
                       "ResourceGroup": "rg-demo", "ResourceLocation": "eastus",
                       "ResourceURI": f"/subscriptions/{sub['azureEntitlementId']}/resourceGroups/rg-demo",
                       "Tags": "", "Unit": unit, "UnitType": unit, "Quantity": quantity,
                       "UnitPrice": float(price), "EffectiveUnitPrice": float(price),
                       "BillingPreTaxTotal": total, "BillingCurrency": "USD",
                       "PricingPreTaxTotal": total, "PricingCurrency": "USD",
                       "PCToBCExchangeRate": 1, "AdditionalInfo": ""}
                rows.append(row if full else {k: v for k, v in row.items() if k not in FULL_ONLY})
            day += timedelta(days=1)
    return rows


def _month_start(dt):
    return dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _start_export(ctx, rows: list[dict] | None):
    op_id = new_id()
    doc = {"id": op_id, "createdDateTime": iso(ctx.now), "polls": 0, "rows": rows,
           "manifestId": new_id()}
    with ctx.state.transaction():
        ctx.state.execute("INSERT INTO exports (id, doc) VALUES (?, ?)", (op_id, json.dumps(doc)))
    return Response(status=202, headers={
        "Location": f"{ctx.graph_base}/reports/partners/billing/operations/{op_id}",
        "Retry-After": "10"})


def _body(ctx) -> dict:
    try:
        body = json.loads(ctx.request.data or b"{}")
    except ValueError:
        raise graph_error(400, "BadRequest", "Unable to read JSON request payload.") from None
    attribute_set = body.get("attributeSet", "full")
    if attribute_set not in ("full", "basic"):
        raise graph_error(400, "BadRequest", "attributeSet must be 'full' or 'basic'.")
    return body


def export_unbilled(ctx):
    require_partner_tenant(ctx, ROLE)
    body = _body(ctx)
    if body.get("currencyCode", "").upper() != "USD":
        raise graph_error(400, "BadRequest", "currencyCode must be provided (USD).")
    period = body.get("billingPeriod")
    if period not in ("current", "last"):
        raise graph_error(400, "BadRequest", "billingPeriod must be 'current' or 'last'.")
    today = ctx.now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = _month_start(ctx.now)
    end = today
    if period == "last":
        end = start
        start = _month_start(start - timedelta(days=1))
    rows = _usage_rows(ctx, start, end, "", body.get("attributeSet", "full") == "full")
    return _start_export(ctx, rows or None)


def export_billed(ctx):
    require_partner_tenant(ctx, ROLE)
    body = _body(ctx)
    invoice = ctx.state.doc("SELECT doc FROM invoices WHERE id = ?", (body.get("invoiceId", ""),))
    if invoice is None:
        return _start_export(ctx, None)
    end = _month_start(parse_iso(invoice["invoiceDate"]))
    start = _month_start(end - timedelta(days=1))
    return _start_export(ctx, _usage_rows(ctx, start, end, invoice["id"],
                                          body.get("attributeSet", "full") == "full") or None)


def _export(ctx, op_id: str) -> dict:
    doc = ctx.state.doc("SELECT doc FROM exports WHERE id = ?", (op_id,))
    if doc is None:
        raise graph_error(404, "NotFound", f"Operation {op_id} not found.")
    return doc


def get_operation(ctx, op_id: str):
    require_partner_tenant(ctx, ROLE)
    with ctx.state.transaction():
        doc = _export(ctx, op_id)
        doc["polls"] += 1
        ctx.state.execute("UPDATE exports SET doc = ? WHERE id = ?", (json.dumps(doc), op_id))
    base = {"id": op_id, "createdDateTime": doc["createdDateTime"],
            "lastActionDateTime": iso(ctx.now)}
    if doc["polls"] <= int(ctx.settings["exportPollsBeforeReady"]):
        return json_response({"@odata.type": "#microsoft.graph.partners.billing.runningOperation",
                              **base, "status": "running"}, headers={"Retry-After": "10"})
    if doc["rows"] is None:
        return json_response({"@odata.type": "#microsoft.graph.partners.billing.failedOperation",
                              **base, "status": "failed",
                              "error": {"code": "5000", "message": "No data available"}})
    return json_response({
        "@odata.type": "#microsoft.graph.partners.billing.exportSuccessOperation", **base,
        "status": "succeeded",
        "resourceLocation@odata.navigationLink":
            f"{ctx.graph_base}/reports/partners/billing/manifests/{doc['manifestId']}"})


def _sas(ctx, manifest_id: str) -> str:
    key = ctx.state.meta("signing_secret").encode()
    return hmac.new(key, manifest_id.encode(), hashlib.sha256).hexdigest()


def get_manifest(ctx, manifest_id: str):
    require_partner_tenant(ctx, ROLE)
    doc = ctx.state.doc("SELECT doc FROM exports WHERE json_extract(doc, '$.manifestId') = ?",
                        (manifest_id,))
    if doc is None or doc["rows"] is None:
        raise graph_error(404, "NotFound", f"Manifest {manifest_id} not found.")
    return json_response({
        "@odata.context": f"{ctx.graph_base}/$metadata#reports/partners/billing/manifests/$entity",
        "id": manifest_id, "schemaVersion": "1", "dataFormat": "compressedJSON",
        "createdDateTime": doc["createdDateTime"], "eTag": doc["id"],
        "partnerTenantId": ctx.partner.tenant_id,
        "rootDirectory": f"{ctx.base_url}/blobs/billing/{manifest_id}",
        "sasToken": f"sv=2023-11-03&sr=c&sp=r&sig={_sas(ctx, manifest_id)}",
        "partitionType": "Default", "blobCount": 1,
        "blobs": [{"name": BLOB_NAME, "partitionValue": "default"}]})


def get_blob(ctx, manifest_id: str, name: str):
    if not hmac.compare_digest(ctx.request.args.get("sig", ""), _sas(ctx, manifest_id)):
        return Response(b"<Error><Code>AuthenticationFailed</Code></Error>", status=403,
                        content_type="application/xml")
    doc = ctx.state.doc("SELECT doc FROM exports WHERE json_extract(doc, '$.manifestId') = ?",
                        (manifest_id,))
    if doc is None or doc["rows"] is None or name != BLOB_NAME:
        return Response(b"<Error><Code>BlobNotFound</Code></Error>", status=404,
                        content_type="application/xml")
    payload = "\n".join(json.dumps(r) for r in doc["rows"]).encode()
    return Response(gzip.compress(payload), content_type="application/octet-stream",
                    headers={"x-ms-blob-type": "BlockBlob"})


P = "/graph/v1.0/reports/partners/billing"
ROUTES = [
    Rule(f"{P}/usage/unbilled/export", endpoint=export_unbilled, methods=["POST"]),
    Rule(f"{P}/usage/billed/export", endpoint=export_billed, methods=["POST"]),
    Rule(f"{P}/operations/<op_id>", endpoint=get_operation, methods=["GET"]),
    Rule(f"{P}/manifests/<manifest_id>", endpoint=get_manifest, methods=["GET"]),
    Rule("/blobs/billing/<manifest_id>/<name>", endpoint=get_blob, methods=["GET"]),
]
