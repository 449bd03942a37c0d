"""New Commerce subscription lifecycle: purchase, seat batches, cancellation and seat-reduction
windows, suspension, renewal on the emulator clock, and the billing ledger (reference §2.5).

The money is Microsoft's, computed here with the emulator's own code (the portal's simulator has its
own; a test runs both through the same worked examples). Charge cycles recur on the UTC calendar day
of purchase or renewal; a line is unit price / cycle days x billing days x quantity, rounded down once;
seat changes wipe the old count and recreate the new one; seats given back within 24 hours of being
bought are refunded in full. Renewals and cycle charges happen at 00:00 UTC. Upgrades post `convert`
lines for the rest of the cycle (source credited at its price, target charged at its price) and open
no window.
"""

import calendar
import json
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from ..catalog import CYCLE_MONTHS, TERM_MONTHS, Offer
from ..state import iso, parse_iso
from .common import link, new_id

# "Cancellation window = 7 calendar days (168 h) after purchase or renewal"; the same window
# applies to each batch of added seats. Inside the first 24 hours the refund is full.
WINDOW = timedelta(hours=168)
FULL_REFUND = timedelta(hours=24)
CENT = Decimal("0.01")
LIVE_STATUSES = ("active", "suspended")


def add_months(dt: datetime, months: int) -> datetime:
    month = dt.month - 1 + months
    year = dt.year + month // 12
    month = month % 12 + 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return dt.replace(year=year, month=month, day=day)


def day_of(dt: datetime) -> date:
    return dt.astimezone(UTC).date()


def midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def cycle_of(anchor: datetime, billing_cycle: str, at: datetime) -> tuple[date, date]:
    """(first day, next cycle's first day) of the charge cycle holding `at`'s UTC day. Cycles recur on the
    anchor's day of the month, clamped to short months, always counted from the anchor itself."""
    first = midnight(day_of(anchor))
    step, n, today = CYCLE_MONTHS[billing_cycle], 0, day_of(at)
    while day_of(add_months(first, (n + 1) * step)) <= today:
        n += 1
    return day_of(add_months(first, n * step)), day_of(add_months(first, (n + 1) * step))


def line_total(unit: Decimal, quantity: int, days: int, cycle_days: int) -> Decimal:
    """Effective unit price (unit / cycle days x days) times quantity, rounded down to the cent once."""
    if quantity <= 0 or days <= 0:
        return Decimal("0.00")
    return (unit * quantity * days / cycle_days).quantize(CENT, rounding=ROUND_DOWN)


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
    """The charge cycle of `sub` that contains `at`, as UTC midnights."""
    first, nxt = cycle_of(parse_iso(sub["termStart"]), sub["billingCycle"], at)
    return midnight(first), midnight(nxt)


def _unit(catalog, sub: dict) -> Decimal:
    return catalog.offer(sub["offerId"]).unit_price(sub["termDuration"], sub["billingCycle"])


def charge(state, catalog, sub: dict, *, charge_type: str, quantity: int, first_day: date, last_day: date,
           cycle_days: int, at: datetime, credit: bool = False, subtotal: Decimal | None = None,
           offer_id: str | None = None) -> None:
    """One billing line from `first_day` to `last_day` (inclusive) of a cycle of `cycle_days` days.
    A credit shows a negative effective unit price and total, as Microsoft's reconciliation does.
    `offer_id` bills another offer than the subscription's current one (an upgrade credits the old one)."""
    offer = catalog.offer(offer_id or sub["offerId"])
    customer = state.doc("SELECT doc FROM customers WHERE id = ?", (sub["customerId"],))
    unit = offer.unit_price(sub["termDuration"], sub["billingCycle"])
    days = (last_day - first_day).days + 1
    effective = unit * days / cycle_days
    if subtotal is None:
        subtotal = line_total(unit, quantity, days, cycle_days)
    if credit:
        effective, subtotal = -effective, -subtotal
    tax = Decimal("0.00")  # US reseller billing: tax is the partner's concern, not Microsoft's
    item = {
        "partnerId": None, "customerId": sub["customerId"],
        "customerName": customer["companyProfile"]["companyName"],
        "customerDomainName": customer["companyProfile"]["domain"],
        "customerCountry": customer["billingProfile"]["defaultAddress"].get("country", "US"),
        "invoiceNumber": "", "mpnId": "", "resellerMpnId": "", "orderId": sub["orderId"],
        "orderDate": sub["creationDate"], "productId": offer.product_id, "skuId": offer.sku_id,
        "availabilityId": offer.availability_id, "productName": offer.title, "skuName": offer.title,
        "chargeType": charge_type, "unitPrice": float(unit),
        "effectiveUnitPrice": float(effective.quantize(Decimal("0.0001"))),
        "unitType": "Licenses", "quantity": quantity, "billableQuantity": quantity,
        "subtotal": float(subtotal), "taxTotal": float(tax), "totalForCustomer": float(subtotal + tax),
        "currency": "USD", "pricingCurrency": "USD", "pcToBCExchangeRate": 1,
        "pcToBCExchangeRateDate": iso(at), "publisherName": "Microsoft Corporation",
        "publisherId": "", "subscriptionDescription": sub["friendlyName"],
        "subscriptionId": sub["id"], "chargeStartDate": iso(midnight(first_day)),
        "chargeEndDate": iso(midnight(last_day)),
        "termAndBillingCycle": f"{sub['termDuration']} {sub['billingCycle']}",
        "alternateId": sub["orderId"], "priceAdjustmentDescription": "", "discountDetails": "",
        "meterDescription": "", "reservationOrderId": "", "creditReasonCode": "",
        "promotionId": "", "productQualifiers": [], "billingFrequency": sub["billingCycle"],
        "referenceId": new_id(), "effectiveDate": iso(at),
        "attributes": {"objectType": "OneTimeInvoiceLineItem"},
    }
    state.execute("INSERT INTO ledger (customer_id, doc) VALUES (?, ?)",
                  (sub["customerId"], json.dumps(item)))


def _charge_cycle(state, catalog, sub: dict, *, charge_type: str, at: datetime) -> None:
    """A whole cycle for every seat: the purchase, a renewal or a cycle charge."""
    first, nxt = cycle_of(parse_iso(sub["termStart"]), sub["billingCycle"], at)
    charge(state, catalog, sub, charge_type=charge_type, quantity=sub["quantity"], first_day=first,
           last_day=nxt - timedelta(days=1), cycle_days=(nxt - first).days, at=at)


def _next_charge(sub: dict, after: datetime) -> str | None:
    _, end = _period(sub, after)
    return iso(end) if end < parse_iso(sub["termEnd"]) else None


def term_end_after(start: datetime, term: str) -> str:
    """The renewal moment: 00:00 UTC after the term's last day."""
    return iso(add_months(midnight(day_of(start)), TERM_MONTHS[term]))


# -- purchase --------------------------------------------------------------------------------
def purchase(state, catalog, *, customer_id: str, offer: Offer, quantity: int, term: str,
             billing_cycle: str, friendly_name: str, order_id: str, at: datetime,
             status: str, coterminous_with: dict | None = None) -> dict:
    """A new subscription, charged for its first cycle; or, for a partial upgrade (`coterminous_with`
    the source), one that shares the source's term, charge cycle and window and is charged nothing
    here: the caller posts its `convert` lines."""
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
    if coterminous_with is not None:
        source = coterminous_with
        sub.update({"termStart": source["termStart"], "termEnd": source["termEnd"],
                    "nextCharge": source.get("nextCharge"),
                    "batches": [{"quantity": quantity, "addedAt": iso(at),
                                 "windowEnd": iso(parse_iso(source["termStart"]) + WINDOW)}]})
        save(state, sub)
        return sub
    sub["termEnd"] = term_end_after(at, term)
    _charge_cycle(state, catalog, sub, charge_type="new", at=at)
    sub["nextCharge"] = _next_charge(sub, at)
    save(state, sub)
    return sub


# -- changes -----------------------------------------------------------------------------------
def within_window(since: str, now: datetime) -> bool:
    return now < parse_iso(since) + WINDOW


def batch_window_end(batch: dict) -> datetime:
    """A batch's own 7 days, or the window it inherited (seats moved by an upgrade open none)."""
    if batch.get("windowEnd"):
        return parse_iso(batch["windowEnd"])
    return parse_iso(batch["addedAt"]) + WINDOW


def refundable_batches(sub: dict, now: datetime) -> list[dict]:
    return [b for b in sub["batches"] if now < batch_window_end(b)]


def full_refund_open(batch: dict, now: datetime) -> bool:
    return not batch.get("windowEnd") and now < parse_iso(batch["addedAt"]) + FULL_REFUND


def take_seats(sub: dict, seats: int, now: datetime) -> list[tuple[dict, int]]:
    """Which batches give back `seats`: the newest refundable ones first."""
    taken = []
    for batch in reversed(refundable_batches(sub, now)):
        if not seats:
            break
        count = min(batch["quantity"], seats)
        taken.append((batch, count))
        seats -= count
    return taken


def seat_change_lines(sub: dict, quantity: int, now: datetime, unit: Decimal,
                      taken: list[tuple[dict, int]]) -> list[dict]:
    """The billing lines for moving `sub` from its quantity to `quantity` at `now` (no state touched).

    Wipe: a credit for the current count from today to the end of the charge cycle. Recreate: a
    charge for the new count over the same days. Seats given back inside their first 24 hours are
    wiped from the day they were charged in this cycle, so they get everything back. Seats taken one
    after another with the same first day share one wipe and one recreate; every line is rounded
    down once."""
    first, nxt = cycle_of(parse_iso(sub["termStart"]), sub["billingCycle"], now)
    cycle_days, today = (nxt - first).days, day_of(now)
    runs: list[list] = []  # [first day, count before, count after]
    count = sub["quantity"]
    for batch, seats in taken:
        bought = max(day_of(parse_iso(batch["addedAt"])), first)
        start = bought if full_refund_open(batch, now) else today
        if runs and runs[-1][0] == start:
            runs[-1][2] = count - seats
        else:
            runs.append([start, count, count - seats])
        count -= seats
    if not runs:
        runs = [[today, sub["quantity"], quantity]]
    lines = []
    for start, before, after in runs:
        days = (nxt - start).days
        for seats, credit in ((before, True), (after, False)):
            if seats:
                lines.append({"quantity": seats, "first_day": start, "last_day": nxt - timedelta(days=1),
                              "cycle_days": cycle_days, "credit": credit,
                              "subtotal": line_total(unit, seats, days, cycle_days)})
    return lines


def convert_lines(sub: dict, before: int, after: int, now: datetime, unit: Decimal) -> list[dict]:
    """An upgrade's lines on `sub`: wipe `before` seats and recreate `after` at `unit`, from today to the
    end of the charge cycle holding today. Upgrades open no window, so there is no 24-hour full refund."""
    first, nxt = cycle_of(parse_iso(sub["termStart"]), sub["billingCycle"], now)
    cycle_days, today = (nxt - first).days, day_of(now)
    days = (nxt - today).days
    return [{"quantity": seats, "first_day": today, "last_day": nxt - timedelta(days=1), "cycle_days": cycle_days,
             "credit": credit, "subtotal": line_total(unit, seats, days, cycle_days)}
            for seats, credit in ((before, True), (after, False)) if seats]


def refund_of(lines: list[dict]) -> Decimal:
    """What a set of lines gives back: credits less charges."""
    return sum((li["subtotal"] if li["credit"] else -li["subtotal"] for li in lines), Decimal("0.00"))


def post(state, catalog, sub: dict, lines: list[dict], *, charge_type: str, now: datetime,
         offer_id: str | None = None) -> None:
    for li in lines:
        charge(state, catalog, sub, charge_type=charge_type, quantity=li["quantity"], first_day=li["first_day"],
               last_day=li["last_day"], cycle_days=li["cycle_days"], at=now, credit=li["credit"],
               subtotal=li["subtotal"], offer_id=offer_id)



def change_quantity(state, catalog, sub: dict, quantity: int, now: datetime) -> None:
    """Microsoft's two steps: refund (wipe) the current count, then charge (recreate) the new one."""
    old = sub["quantity"]
    if quantity == old:
        return
    taken = take_seats(sub, old - quantity, now) if quantity < old else []
    lines = seat_change_lines(sub, quantity, now, _unit(catalog, sub), taken)
    post(state, catalog, sub, lines, charge_type="addQuantity" if quantity > old else "removeQuantity", now=now)
    if quantity > old:
        sub["batches"].append({"quantity": quantity - old, "addedAt": iso(now)})
    for batch, seats in taken:
        batch["quantity"] -= seats
    sub["batches"] = [b for b in sub["batches"] if b["quantity"] > 0]
    sub["quantity"] = quantity


def cancel(state, catalog, sub: dict, now: datetime) -> None:
    if sub.get("termEnd"):
        taken = [(b, b["quantity"]) for b in reversed(sub["batches"])]
        lines = seat_change_lines(sub, 0, now, _unit(catalog, sub), taken)
        post(state, catalog, sub, lines, charge_type="cancelImmediate", now=now)
    sub.update({"status": "deleted", "autoRenewEnabled": False, "nextCharge": None,
                "deletedAt": iso(now)})


def refund_options(sub: dict, now: datetime) -> list[dict]:
    """Partner Center's refundOptions: Full for 24 hours after purchase or renewal, then Partial to
    the end of the 7-day window; each with the moment it expires. Seats that all came by an upgrade
    only have the Partial option of the window they inherited."""
    start = parse_iso(sub["termStart"])
    options = [("Full", start + FULL_REFUND), ("Partial", start + WINDOW)]
    if sub.get("batches") and all(b.get("windowEnd") for b in sub["batches"]):
        # Every seat came by an upgrade: it inherited a window, never a full refund.
        options = [("Partial", max(batch_window_end(b) for b in sub["batches"]))]
    return [{"type": kind, "expiresAt": iso(expires)} for kind, expires in options if now < expires]


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
    sub["termEnd"] = term_end_after(at, sub["termDuration"])
    _charge_cycle(state, catalog, sub, charge_type="renew", at=at)
    sub["nextCharge"] = _next_charge(sub, at)


# Private key of an order document: per line, the subscription it will get and when.
PENDING_LINES = "_pendingLines"


def public_order(order: dict) -> dict:
    """The order as Partner Center shows it (without the emulator's provisioning schedule)."""
    return {k: v for k, v in order.items() if k != PENDING_LINES}


def _provision_due_lines(state, order: dict, stamp: str) -> None:
    """Give each due line its subscription; the order completes with its last line."""
    pending = order.get(PENDING_LINES) or {}
    due = {number: p for number, p in pending.items() if p["readyAt"] <= stamp}
    if not due and pending:
        return
    for line in order["lineItems"]:
        entry = due.get(str(line["lineItemNumber"]))
        if entry is None:
            continue
        line["subscriptionId"] = entry["subscriptionId"]
        sub = load(state, entry["subscriptionId"])
        if sub is not None and sub["status"] == "pending":
            sub["status"] = "active"
            save(state, sub)
        del pending[str(line["lineItemNumber"])]
    order[PENDING_LINES] = pending
    if not pending:
        order["status"] = "completed"
    state.execute("UPDATE orders SET status = ?, doc = ? WHERE id = ?",
                  (order["status"], json.dumps(order), order["id"]))


def settle(state, catalog, now: datetime) -> None:
    """Apply everything the clock has made due: order provisioning, cycle charges, renewals and
    expiries. Called at the start of every request and after the clock moves."""
    stamp = iso(now)
    for order in state.docs("SELECT doc FROM orders WHERE status = 'pending'"):
        _provision_due_lines(state, order, stamp)
    due = state.docs("SELECT doc FROM subscriptions WHERE status IN ('active', 'suspended') AND"
                     " (term_end <= ? OR next_charge <= ?)", (stamp, stamp))
    for sub in due:
        while sub["status"] in LIVE_STATUSES:
            term_end = parse_iso(sub["termEnd"])
            next_charge = parse_iso(sub["nextCharge"]) if sub.get("nextCharge") else None
            if next_charge and next_charge < term_end and next_charge <= now:
                _charge_cycle(state, catalog, sub, charge_type="cycleCharge", at=next_charge)
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
            "refundOptions": refund_options(sub, now) if sub["status"] in LIVE_STATUSES else [],
            "refundableQuantity": {
                "totalQuantity": sum(b["quantity"] for b in refundable),
                "details": [{"quantity": b["quantity"],
                             "allowedUntilDateTime": iso(batch_window_end(b))}
                            for b in refundable]},
        })
        if sub.get("scheduledNextTermInstructions"):
            out["scheduledNextTermInstructions"] = sub["scheduledNextTermInstructions"]
    if sub["status"] == "suspended":
        out["suspensionReasons"] = ["PartnerInitiated"]
    return out
