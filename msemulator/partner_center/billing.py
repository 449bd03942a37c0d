"""Invoices, reconciliation line items (billed and unbilled) and the license price sheet."""

import csv
import io
import json

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from ..catalog import TERM_BILLING
from ..responses import json_response, pc_error
from ..state import iso
from .common import collection, decode_continuation, encode_continuation, link, page_size

ONE_TIME = {"provider": "onetime", "invoicelineitemtype": "billinglineitems"}


def close_period(state, now) -> dict | None:
    """Put every unbilled line item on a new invoice (control API: `/_emulator/billing/close`)."""
    with state.transaction():
        count = state.row("SELECT COUNT(*) AS n FROM ledger WHERE invoice_id IS NULL")["n"]
        if not count:
            return None
        number = state.row("SELECT COUNT(*) AS n FROM invoices")["n"] + 1
        invoice_id = f"G{number:09d}"
        rows = state.rows("SELECT seq, doc FROM ledger WHERE invoice_id IS NULL")
        total = 0.0
        for row in rows:
            item = json.loads(row["doc"])
            item["invoiceNumber"] = invoice_id
            total += item["totalForCustomer"]
            state.execute("UPDATE ledger SET invoice_id = ?, doc = ? WHERE seq = ?",
                          (invoice_id, json.dumps(item), row["seq"]))
        invoice = {"id": invoice_id, "invoiceDate": iso(now), "billingPeriodStartDate": None,
                   "billingPeriodEndDate": iso(now), "totalCharges": round(total, 2),
                   "paidAmount": 0, "currencyCode": "USD", "currencySymbol": "$",
                   "pdfDownloadLink": "", "invoiceType": "OneTime",
                   "invoiceDetails": [{"invoiceLineItemType": "BillingLineItems",
                                       "billingProvider": "OneTime",
                                       "links": {"self": link(f"/invoices/{invoice_id}/lineitems"
                                                              "?provider=onetime&invoicelineitemtype"
                                                              "=billinglineitems")},
                                       "attributes": {"objectType": "InvoiceDetail"}}],
                   "links": {"self": link(f"/invoices/{invoice_id}")},
                   "attributes": {"objectType": "Invoice"}}
        state.execute("INSERT INTO invoices (id, doc) VALUES (?, ?)", (invoice_id, json.dumps(invoice)))
    return invoice


def _check_line_item_query(ctx) -> None:
    args = {k.lower(): v.lower() for k, v in ctx.request.args.items()}
    for key, expected in ONE_TIME.items():
        if args.get(key) != expected:
            raise pc_error(400, 800002, f"Invalid request input: {key}={expected} is required "
                                        "(the emulator serves license-based one-time line items).")


def _line_items(ctx, invoice_id: str | None, self_uri: str):
    size = page_size(ctx.request, 2000, 2000)
    after = decode_continuation(ctx.request)
    if invoice_id is None:
        rows = ctx.state.rows("SELECT seq, doc FROM ledger WHERE invoice_id IS NULL AND seq > ?"
                              " ORDER BY seq LIMIT ?", (after, size + 1))
    else:
        rows = ctx.state.rows("SELECT seq, doc FROM ledger WHERE invoice_id = ? AND seq > ?"
                              " ORDER BY seq LIMIT ?", (invoice_id, after, size + 1))
    items = [json.loads(r["doc"]) for r in rows[:size]]
    more = len(rows) > size
    return json_response(collection(items, self_uri,
                                    next_uri=f"{self_uri}&seekOperation=Next" if more else None,
                                    continuation=encode_continuation(rows[size - 1]["seq"]) if more
                                    else None))


def unbilled_line_items(ctx):
    _check_line_item_query(ctx)
    if ctx.request.args.get("currencycode", "USD").upper() != "USD":
        raise pc_error(400, 800002, "Invalid request input: only currencycode=USD is billed.")
    period = ctx.request.args.get("period", "current").lower()
    if period not in ("current", "previous"):
        raise pc_error(400, 800002, "Invalid request input: period must be current or previous.")
    uri = ("/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems"
           f"&currencycode=USD&period={period}")
    if period == "previous":
        return json_response(collection([], uri))
    return _line_items(ctx, None, uri)


def _invoice(ctx, invoice_id: str) -> dict:
    doc = ctx.state.doc("SELECT doc FROM invoices WHERE id = ?", (invoice_id,))
    if doc is None:
        raise pc_error(404, 1000, f"Invoice {invoice_id} not found.")
    return doc


def billed_line_items(ctx, invoice_id: str):
    _check_line_item_query(ctx)
    _invoice(ctx, invoice_id)
    return _line_items(ctx, invoice_id, f"/invoices/{invoice_id}/lineitems?provider=onetime"
                                        "&invoicelineitemtype=billinglineitems")


def list_invoices(ctx):
    items = ctx.state.docs("SELECT doc FROM invoices ORDER BY seq DESC")
    return json_response(collection(items, "/invoices"))


def get_invoice(ctx, invoice_id: str):
    return json_response(_invoice(ctx, invoice_id))


PRICE_SHEET_COLUMNS = ["ProductTitle", "ProductId", "SkuId", "SkuTitle", "Publisher", "SkuDescription",
                       "UnitOfMeasure", "TermDuration", "BillingPlan", "Market", "Currency",
                       "UnitPrice", "PricingTierRangeMin", "PricingTierRangeMax",
                       "EffectiveStartDate", "EffectiveEndDate", "Tags", "ERP Price", "Segment"]


def price_sheet(ctx, market: str, view: str):
    """`GET /v1.0/sales/pricesheets(Market='US',PricesheetView='updatedlicensebased')/$value`: the
    New Commerce license price list as CSV (the real route's shape, served under /partnercenter)."""
    if market.upper() != "US" or view.lower() != "updatedlicensebased":
        raise pc_error(400, 800002, "Invalid request input: the emulator serves "
                                    "Market='US', PricesheetView='updatedlicensebased'.")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(PRICE_SHEET_COLUMNS)
    start = ctx.now.strftime("%Y-%m-01T00:00:00Z")
    for offer in ctx.catalog.offers:
        for term in offer.terms:
            for cycle in TERM_BILLING[term]:
                price = offer.unit_price(term, cycle)
                writer.writerow([offer.title, offer.product_id, offer.sku_id, offer.title,
                                 "Microsoft Corporation", offer.description, "1 License", term,
                                 cycle.capitalize(), "US", "USD", f"{price}", "", "", start,
                                 "9999-12-31T23:59:59Z", "", f"{price}", "Commercial"])
    return Response(out.getvalue(), content_type="text/csv; charset=utf-8")


P = "/partnercenter/v1"
ROUTES = [
    Rule(f"{P}/invoices", endpoint=list_invoices, methods=["GET"]),
    Rule(f"{P}/invoices/unbilled/lineitems", endpoint=unbilled_line_items, methods=["GET"]),
    Rule(f"{P}/invoices/<invoice_id>", endpoint=get_invoice, methods=["GET"]),
    Rule(f"{P}/invoices/<invoice_id>/lineitems", endpoint=billed_line_items, methods=["GET"]),
    Rule("/partnercenter/v1.0/sales/pricesheets(Market='<market>',PricesheetView='<view>')/$value",
         endpoint=price_sheet, methods=["GET"]),
]
