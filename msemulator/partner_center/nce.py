"""New Commerce subscription lifecycle: purchase, seat batches, cancellation and seat-reduction
windows, suspension, renewal on the emulator clock, and the billing ledger (reference §2.5)."""

import calendar
import json
import math
from datetime import datetime, timedelta
from decimal import Decimal

from ..catalog import CYCLE_MONTHS, TERM_MONTHS, Offer, money
from ..state import iso, parse_iso
from .common import link, new_id

# "Cancellation window = 7 calendar days (168 h) after purchase or renewal"; the same window
# applies to each batch of added seats.
WINDOW = timedelta(hours=168)
LIVE_STATUSES = ("active", "suspended")


def add_months(dt: datetime, months: int) -> datetime:
    month = dt.month - 1 + months
    year = dt.year + month // 12
    month = month % 12 + 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return dt.replace(year=year, month=month, day=day)


def load(state, subscription_id: str) -> dict | None:
    return state.doc("SELECT doc FROM subscriptions WHERE id = ?", (subscription_id,))


def save(state, sub: dict) -> None:
    state.execute(
        "INSERT INTO subscriptions (id, customer_id, order_id, status, provisioning_id, term_end,"
        " next_charge, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET status = excluded.status, provisioning_id ="
        " excluded.provisioning_id, term_end = excluded.term_end, next_charge = excluded.next_charge,"
        " doc = excluded.doc",
        (sub["id"], sub["customerId"], sub["orderId"], sub["status"], sub["provisioningId"],
         sub.get("termEnd"), sub.get("nextCharge"), json.dumps(sub)))


# -- billing periods and the ledger --------------------------------------------------------
def _period(sub: dict, at: datetime) -> tuple[datetime, datetime]:
    """The billing period of `sub` that contains `at`."""
    start = parse_iso(sub["termStart"])
    step = CYCLE_MONTHS[sub["billingCycle"]]
    n = 0
    while add_months(start, (n + 1) * step) <= at:
        n += 1
    return add_months(start, n * step), add_months(start, (n + 1) * step)


def _fraction_remaining(start: datetime, end: datetime, at: datetime) -> Decimal:
    """Daily proration: whole days left in the period over days in the period."""
    total = max((end - start).days, 1)
    left = min(math.ceil(max((end - at).total_seconds(), 0) / 86400), total)
    return Decimal(left) / Decimal(total)


def charge(state, catalog, sub: dict, *, charge_type: str, quantity: int, start: datetime,
           end: datetime, at: datetime, fraction: Decimal = Decimal(1)) -> None:
    offer = catalog.offer(sub["offerId"])
    customer = state.doc("SELECT doc FROM customers WHERE id = ?", (sub["customerId"],))
    unit = offer.unit_price(sub["termDuration"], sub["billingCycle"])
    effective = money(unit * fraction)
    subtotal = money(effective * quantity)
    tax = Decimal("0.00")  # US reseller billing: tax is the partner's concern, not Microsoft's
    item = {
        "partnerId": None, "customerId": sub["customerId"],
        "customerName": customer["companyProfile"]["companyName"],
        "customerDomainName": customer["companyProfile"]["domain"],
        "customerCountry": customer["billingProfile"]["defaultAddress"].get("country", "US"),
        "invoiceNumber": "", "mpnId": "", "resellerMpnId": "", "orderId": sub["orderId"],
        "orderDate": sub["creationDate"], "productId": offer.product_id, "skuId": offer.sku_id,
        "availabilityId": offer.availability_id, "productName": offer.title, "skuName": offer.title,
        "chargeType": charge_type, "unitPrice": float(unit), "effectiveUnitPrice": float(effective),
        "unitType": "Licenses", "quantity": quantity, "billableQuantity": quantity,
        "subtotal": float(subtotal), "taxTotal": float(tax), "totalForCustomer": float(subtotal + tax),
        "currency": "USD", "pricingCurrency": "USD", "pcToBCExchangeRate": 1,
        "pcToBCExchangeRateDate": iso(at), "publisherName": "Microsoft Corporation",
        "publisherId": "", "subscriptionDescription": sub["friendlyName"],
        "subscriptionId": sub["id"], "chargeStartDate": iso(start), "chargeEndDate": iso(end),
        "termAndBillingCycle": f"{sub['termDuration']} {sub['billingCycle']}",
        "alternateId": sub["orderId"], "priceAdjustmentDescription": "", "discountDetails": "",
        "meterDescription": "", "reservationOrderId": "", "creditReasonCode": "",
        "promotionId": "", "productQualifiers": [], "billingFrequency": sub["billingCycle"],
        "referenceId": new_id(), "effectiveDate": iso(at),
        "attributes": {"objectType": "OneTimeInvoiceLineItem"},
    }
    state.execute("INSERT INTO ledger (customer_id, doc) VALUES (?, ?)",
                  (sub["customerId"], json.dumps(item)))


def _next_charge(sub: dict, after: datetime) -> str | None:
    _, end = _period(sub, after)
    return iso(end) if end < parse_iso(sub["termEnd"]) else None


# -- purchase --------------------------------------------------------------------------------
def purchase(state, catalog, *, customer_id: str, offer: Offer, quantity: int, term: str,
             billing_cycle: str, friendly_name: str, order_id: str, at: datetime,
             status: str) -> dict:
    sub = {
        "id": new_id(), "customerId": customer_id, "orderId": order_id,
        "offerId": offer.catalog_item_id, "provisioningId": offer.provisioning_id or None,
        "offerName": offer.title, "friendlyName": friendly_name or offer.title,
        "quantity": quantity, "status": status, "autoRenewEnabled": bool(offer.terms),
        "billingCycle": billing_cycle, "termDuration": term, "creationDate": iso(at),
        "termStart": iso(at), "etag": 1, "scheduledNextTermInstructions": None,
        "batches": [{"quantity": quantity, "addedAt": iso(at)}],
    }
    if offer.is_azure_plan:
        sub.update({"termDuration": "", "billingCycle": "monthly", "autoRenewEnabled": False,
                    "azureEntitlementId": new_id(), "batches": []})
        save(state, sub)
        return sub
    start = at
    sub["termEnd"] = iso(add_months(start, TERM_MONTHS[term]))
    _, period_end = _period(sub, at)
    charge(state, catalog, sub, charge_type="new", quantity=quantity, start=start, end=period_end,
           at=at)
    sub["nextCharge"] = _next_charge(sub, at)
    save(state, sub)
    return sub


# -- changes -----------------------------------------------------------------------------------
def within_window(since: str, now: datetime) -> bool:
    return now < parse_iso(since) + WINDOW


def refundable_batches(sub: dict, now: datetime) -> list[dict]:
    return [b for b in sub["batches"] if within_window(b["addedAt"], now)]


def change_quantity(state, catalog, sub: dict, quantity: int, now: datetime) -> None:
    delta = quantity - sub["quantity"]
    start, end = _period(sub, now)
    fraction = _fraction_remaining(start, end, now)
    if delta > 0:
        sub["batches"].append({"quantity": delta, "addedAt": iso(now)})
        charge(state, catalog, sub, charge_type="addQuantity", quantity=delta, start=now, end=end,
               at=now, fraction=fraction)
    elif delta < 0:
        remaining = -delta
        for batch in reversed(refundable_batches(sub, now)):
            taken = min(batch["quantity"], remaining)
            batch["quantity"] -= taken
            remaining -= taken
            if not remaining:
                break
        sub["batches"] = [b for b in sub["batches"] if b["quantity"] > 0]
        charge(state, catalog, sub, charge_type="removeQuantity", quantity=delta, start=now, end=end,
               at=now, fraction=fraction)
    sub["quantity"] = quantity


def cancel(state, catalog, sub: dict, now: datetime) -> None:
    if sub.get("termEnd"):
        start, end = _period(sub, now)
        charge(state, catalog, sub, charge_type="cancelImmediate", quantity=-sub["quantity"],
               start=now, end=end, at=now, fraction=_fraction_remaining(start, end, now))
    sub.update({"status": "deleted", "autoRenewEnabled": False, "nextCharge": None,
                "deletedAt": iso(now)})


def _renew(state, catalog, sub: dict) -> None:
    at = parse_iso(sub["termEnd"])
    instructions = sub.get("scheduledNextTermInstructions") or {}
    product = instructions.get("product") or {}
    if instructions.get("quantity"):
        sub["quantity"] = int(instructions["quantity"])
    if product.get("termDuration"):
        sub["termDuration"] = product["termDuration"]
    if product.get("billingCycle"):
        sub["billingCycle"] = product["billingCycle"].lower()
    sub.update({"termStart": iso(at), "scheduledNextTermInstructions": None,
                "batches": [{"quantity": sub["quantity"], "addedAt": iso(at)}]})
    sub["termEnd"] = iso(add_months(at, TERM_MONTHS[sub["termDuration"]]))
    _, period_end = _period(sub, at)
    charge(state, catalog, sub, charge_type="renew", quantity=sub["quantity"], start=at,
           end=period_end, at=at)
    sub["nextCharge"] = _next_charge(sub, at)


def settle(state, catalog, now: datetime) -> None:
    """Apply everything the clock has made due: order provisioning, cycle charges, renewals and
    expiries. Called at the start of every request and after the clock moves."""
    stamp = iso(now)
    for order in state.docs("SELECT doc FROM orders WHERE status = 'pending' AND ready_at <= ?",
                            (stamp,)):
        order["status"] = "completed"
        state.execute("UPDATE orders SET status = 'completed', doc = ? WHERE id = ?",
                      (json.dumps(order), order["id"]))
        for sub in state.docs("SELECT doc FROM subscriptions WHERE order_id = ? AND status = 'pending'",
                              (order["id"],)):
            sub["status"] = "active"
            save(state, sub)
    due = state.docs("SELECT doc FROM subscriptions WHERE status IN ('active', 'suspended') AND"
                     " (term_end <= ? OR next_charge <= ?)", (stamp, stamp))
    for sub in due:
        while sub["status"] in LIVE_STATUSES:
            term_end = parse_iso(sub["termEnd"])
            next_charge = parse_iso(sub["nextCharge"]) if sub.get("nextCharge") else None
            if next_charge and next_charge < term_end and next_charge <= now:
                _, end = _period(sub, next_charge)
                charge(state, catalog, sub, charge_type="cycleCharge", quantity=sub["quantity"],
                       start=next_charge, end=end, at=next_charge)
                sub["nextCharge"] = _next_charge(sub, next_charge)
            elif term_end <= now:
                if sub["status"] == "active" and sub["autoRenewEnabled"]:
                    _renew(state, catalog, sub)
                else:
                    sub.update({"status": "expired", "autoRenewEnabled": False, "nextCharge": None,
                                "expiredAt": sub["termEnd"]})
            else:
                break
        save(state, sub)


# -- rendering -----------------------------------------------------------------------------------
def render(sub: dict, catalog, now: datetime) -> dict:
    offer = catalog.offer(sub["offerId"])
    product_id, sku_id, availability_id = sub["offerId"].split(":")
    base = f"/products/{product_id}/skus/{sku_id}"
    out = {
        "id": sub["id"], "offerId": sub["offerId"], "offerName": sub["offerName"],
        "friendlyName": sub["friendlyName"], "productType": offer.product_type,
        "quantity": sub["quantity"],
        "unitType": "Usage-based" if offer.is_azure_plan else "Licenses",
        "hasPurchasableAddons": False, "creationDate": sub["creationDate"],
        "effectiveStartDate": sub["termStart"], "status": sub["status"],
        "autoRenewEnabled": sub["autoRenewEnabled"], "isTrial": False,
        "billingType": "usage" if offer.is_azure_plan else "license",
        "billingCycle": sub["billingCycle"], "termDuration": sub["termDuration"],
        "renewalTermDuration": "", "isMicrosoftProduct": True, "partnerId": "",
        "attentionNeeded": False, "actionTaken": False, "contractType": "subscription",
        "publisherName": "Microsoft Corporation", "orderId": sub["orderId"],
        "actions": ["edit", "cancel"] if sub["status"] in LIVE_STATUSES else [],
        "links": {
            "product": link(f"/products/{product_id}?country=US"),
            "sku": link(f"{base}?country=US"),
            "availability": link(f"{base}/availabilities/{availability_id}?country=US"),
            "self": link(f"/customers/{sub['customerId']}/subscriptions/{sub['id']}"),
        },
        "attributes": {"etag": str(sub["etag"]), "objectType": "Subscription"},
    }
    if sub.get("termEnd"):
        term_end = parse_iso(sub["termEnd"])
        window_end = parse_iso(sub["termStart"]) + WINDOW
        _, period_end = _period(sub, min(now, term_end - timedelta(seconds=1)))
        refundable = refundable_batches(sub, now) if sub["status"] in LIVE_STATUSES else []
        out.update({
            "commitmentEndDate": iso((term_end - timedelta(days=1)).replace(hour=0, minute=0, second=0)),
            "commitmentEndDateTime": iso(term_end - timedelta(seconds=1)),
            "cancellationAllowedUntilDate": iso(window_end),
            "billingCycleEndDate": iso(period_end - timedelta(seconds=1)),
            "refundOptions": [{"type": "Partial", "expiresAt": iso(window_end)}]
            if sub["status"] in LIVE_STATUSES and now < window_end else [],
            "refundableQuantity": {
                "totalQuantity": sum(b["quantity"] for b in refundable),
                "details": [{"quantity": b["quantity"],
                             "allowedUntilDateTime": iso(parse_iso(b["addedAt"]) + WINDOW)}
                            for b in refundable]},
        })
        if sub.get("scheduledNextTermInstructions"):
            out["scheduledNextTermInstructions"] = sub["scheduledNextTermInstructions"]
    if sub["status"] == "suspended":
        out["suspensionReasons"] = ["PartnerInitiated"]
    return out
