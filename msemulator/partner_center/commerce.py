"""Carts, checkout, orders, subscriptions and upgrades (reference §2.4-2.6)."""

import json
import random
from datetime import timedelta

from werkzeug.routing import Rule

from ..catalog import CYCLE_MONTHS, TERM_BILLING, TERM_MONTHS
from ..responses import field, json_response, pc_error, read_json
from ..state import iso, parse_iso
from . import nce
from .common import collection, link, new_id, require_customer, short_id
from .customers import has_accepted_mca

CART_LIFETIME = timedelta(days=7)


def _line_error(code: int, description: str) -> dict:
    return {"errorCode": code, "errorDescription": description, "additionalInformation": {}}


def _build_cart_lines(ctx, raw_lines: list) -> list[dict]:
    lines = []
    settings = ctx.settings
    for number, raw in enumerate(raw_lines):
        item_id = field(raw, "catalogItemId") or ""
        quantity = field(raw, "quantity", 1)
        cycle = (field(raw, "billingCycle") or "").lower()
        term = field(raw, "termDuration") or ""
        offer = ctx.catalog.offer(item_id) if item_id.count(":") == 2 else None
        line = {"id": field(raw, "id", number), "catalogItemId": item_id, "quantity": quantity,
                "billingCycle": cycle, "termDuration": term,
                "friendlyName": field(raw, "friendlyName") or (offer.title if offer else ""),
                "customTermEndDate": field(raw, "customTermEndDate"),
                "promotionId": field(raw, "promotionId"),
                "attestationAccepted": bool(field(raw, "attestationAccepted", False)),
                "provisioningContext": field(raw, "provisioningContext") or {},
                "currencyCode": "USD", "orderGroup": "0"}
        if offer is None:
            line["error"] = _line_error(10001, f"The catalog item id {item_id} is not valid.")
        elif not isinstance(quantity, int) or quantity < 1:
            line["error"] = _line_error(10010, "Quantity must be a positive integer.")
        elif offer.is_azure_plan:
            line.update({"termDuration": "", "billingCycle": "monthly", "quantity": 1})
        elif term not in offer.terms:
            line["error"] = _line_error(10010, f"Term duration '{term}' is not available for this offer.")
        elif cycle not in TERM_BILLING[term]:
            line["error"] = _line_error(10010, f"Billing cycle '{cycle}' is not supported for term "
                                               f"'{term}'.")
        elif settings["sandboxLimits"] and quantity > settings["maxSeatsPerSubscription"]:
            line["error"] = _line_error(10009, "Sandbox limit exceeded: at most "
                                               f"{settings['maxSeatsPerSubscription']} licenses per "
                                               "subscription.")
        if offer is not None and "error" not in line and not offer.is_azure_plan:
            unit = float(offer.unit_price(term, cycle))
            line["pricing"] = {"listPrice": unit, "discountedPrice": unit, "proratedPrice": unit,
                               "price": unit, "extendedPrice": round(unit * quantity, 2)}
            line["orderGroup"] = str(sorted(CYCLE_MONTHS).index(cycle))
        lines.append(line)
    return lines


def _cart(ctx, customer_id: str, cart_id: str) -> dict:
    doc = ctx.state.doc("SELECT doc FROM carts WHERE id = ? AND customer_id = ?", (cart_id, customer_id))
    if doc is None:
        raise pc_error(404, 1000, f"Cart {cart_id} not found.")
    return doc


def create_cart(ctx, customer_id: str):
    require_customer(ctx, customer_id)
    body = read_json(ctx.request)
    raw_lines = field(body, "lineItems") or []
    if not raw_lines:
        raise pc_error(400, 800002, "Invalid request input: lineItems is required.")
    stamp = iso(ctx.now)
    cart_id = new_id()
    cart = {"id": cart_id, "creationTimestamp": stamp, "lastModifiedTimestamp": stamp,
            "expirationTimestamp": iso(ctx.now + CART_LIFETIME),
            "lastModifiedUser": ctx.claims.get("upn") or ctx.claims.get("appid"),
            "lineItems": _build_cart_lines(ctx, raw_lines), "status": "Active",
            "partnerOnRecordAttestationAccepted": bool(field(body, "partnerOnRecordAttestationAccepted")),
            "links": {"self": link(f"/customers/{customer_id}/carts/{cart_id}")},
            "attributes": {"objectType": "Cart"}}
    with ctx.state.transaction():
        ctx.state.execute("INSERT INTO carts (id, customer_id, doc) VALUES (?, ?, ?)",
                          (cart["id"], customer_id, json.dumps(cart)))
    return json_response(cart, 201)


def get_cart(ctx, customer_id: str, cart_id: str):
    require_customer(ctx, customer_id)
    return json_response(_cart(ctx, customer_id, cart_id))


def update_cart(ctx, customer_id: str, cart_id: str):
    require_customer(ctx, customer_id)
    body = read_json(ctx.request)
    with ctx.state.transaction():
        cart = _cart(ctx, customer_id, cart_id)
        if cart["status"] != "Active":
            raise pc_error(400, 800065, "Cart has already been submitted.")
        cart["lineItems"] = _build_cart_lines(ctx, field(body, "lineItems") or [])
        cart["lastModifiedTimestamp"] = iso(ctx.now)
        ctx.state.execute("UPDATE carts SET doc = ? WHERE id = ?", (json.dumps(cart), cart_id))
    return json_response(cart)


def _order_line(number: int, line: dict, sub: dict) -> dict:
    product_id, sku_id, availability_id = line["catalogItemId"].split(":")
    base = f"/products/{product_id}/skus/{sku_id}"
    # No subscriptionId until the line is provisioned (nce.settle fills it in).
    return {"lineItemNumber": number, "offerId": line["catalogItemId"],
            "termDuration": line["termDuration"], "transactionType": "New",
            "friendlyName": sub["friendlyName"], "quantity": line["quantity"],
            "pricing": line.get("pricing", {}),
            "links": {"product": link(f"/products/{product_id}?country=US"),
                      "sku": link(f"{base}?country=US"),
                      "availability": link(f"{base}/availabilities/{availability_id}?country=US")}}


def checkout(ctx, customer_id: str, cart_id: str):
    require_customer(ctx, customer_id)
    settings = ctx.settings
    with ctx.state.transaction():
        cart = _cart(ctx, customer_id, cart_id)
        if cart["status"] != "Active":
            raise pc_error(400, 800065, "Cart has already been submitted.",
                           error_name="CartAlreadySubmitted")
        if not has_accepted_mca(ctx.state, customer_id):
            raise pc_error(403, 13605, "The customer has not accepted the Microsoft Customer "
                                       "Agreement. Attest customer acceptance before the purchase.",
                           error_name="MCAAcceptanceRequired")
        valid = [line for line in cart["lineItems"] if "error" not in line]
        for line in valid:
            offer = ctx.catalog.offer(line["catalogItemId"])
            if not offer.minimum_quantity <= line["quantity"] <= offer.maximum_quantity:
                raise pc_error(400, 900275, f"The quantity {line['quantity']} is not allowed. It must "
                                            f"be between {offer.minimum_quantity} and "
                                            f"{offer.maximum_quantity}.")
        if settings["sandboxLimits"]:
            live = ctx.state.row("SELECT COUNT(*) AS n FROM subscriptions WHERE customer_id = ? AND"
                                 " status IN ('active', 'suspended', 'pending')", (customer_id,))["n"]
            if live + len(valid) > settings["maxSubscriptionsPerCustomer"]:
                raise pc_error(403, 800066, "The maximum number of subscriptions for this customer "
                                            "has been reached.", error_name="SandboxLimitExceeded")
        base_delay = float(settings["orderProvisioningSeconds"])
        tail = float(settings.get("orderProvisioningTailSeconds", 0))
        groups: dict[str, list] = {}
        for line in valid:
            groups.setdefault(line["orderGroup"], []).append(line)
        orders = []
        for lines in groups.values():
            order_id = short_id()
            order_lines = []
            pending = {}
            rng = random.Random(order_id)  # a delay, not a secret
            for number, line in enumerate(lines):
                offer = ctx.catalog.offer(line["catalogItemId"])
                sub = nce.purchase(ctx.state, ctx.catalog, customer_id=customer_id, offer=offer,
                                   quantity=line["quantity"], term=line["termDuration"],
                                   billing_cycle=line["billingCycle"],
                                   friendly_name=line["friendlyName"], order_id=order_id,
                                   at=ctx.now, status="pending")
                order_lines.append(_order_line(number, line, sub))
                delay = base_delay + tail * rng.random() ** 3
                pending[str(number)] = {"subscriptionId": sub["id"],
                                        "readyAt": iso(ctx.now + timedelta(seconds=delay))}
            ready_at = max(p["readyAt"] for p in pending.values())
            order = {"id": order_id, "alternateId": order_id, "referenceCustomerId": customer_id,
                     "billingCycle": lines[0]["billingCycle"], "currencyCode": "USD",
                     "currencySymbol": "$", "lineItems": order_lines, "creationDate": iso(ctx.now),
                     "status": "pending", "transactionType": "UserPurchase",
                     "links": {"self": link(f"/customers/{customer_id}/orders/{order_id}"),
                               "provisioningStatus": link(
                                   f"/customers/{customer_id}/orders/{order_id}/provisioningstatus")},
                     "attributes": {"objectType": "Order"}, nce.PENDING_LINES: pending}
            ctx.state.execute("INSERT INTO orders (id, customer_id, status, ready_at, doc)"
                              " VALUES (?, ?, 'pending', ?, ?)",
                              (order_id, customer_id, ready_at, json.dumps(order)))
            orders.append(order_id)
        cart["status"] = "Ordered"
        ctx.state.execute("UPDATE carts SET doc = ? WHERE id = ?", (json.dumps(cart), cart_id))
        # Lines already due (no delay configured) are provisioned before the answer goes out.
        nce.settle(ctx.state, ctx.catalog, ctx.now)
        orders = [_order(ctx, customer_id, order_id) for order_id in orders]
    errors = [{"orderGroupId": line["orderGroup"], "code": line["error"]["errorCode"],
               "description": line["error"]["errorDescription"]}
              for line in cart["lineItems"] if "error" in line]
    return json_response({"orders": orders, "orderErrors": errors,
                          "attributes": {"objectType": "CartCheckoutResult"}}, 201)


# -- orders ----------------------------------------------------------------------------------
def _order(ctx, customer_id: str, order_id: str) -> dict:
    doc = ctx.state.doc("SELECT doc FROM orders WHERE id = ? AND customer_id = ?", (order_id, customer_id))
    if doc is None:
        raise pc_error(404, 1000, f"Order {order_id} not found.")
    return nce.public_order(doc)


def list_orders(ctx, customer_id: str):
    require_customer(ctx, customer_id)
    items = [nce.public_order(doc) for doc in ctx.state.docs(
        "SELECT doc FROM orders WHERE customer_id = ? ORDER BY seq", (customer_id,))]
    return json_response(collection(items, f"/customers/{customer_id}/orders"))


def get_order(ctx, customer_id: str, order_id: str):
    require_customer(ctx, customer_id)
    return json_response(_order(ctx, customer_id, order_id))


def _line_status(line: dict) -> str:
    return "fulfilled" if line.get("subscriptionId") else "pending"


def order_provisioning_status(ctx, customer_id: str, order_id: str):
    require_customer(ctx, customer_id)
    order = _order(ctx, customer_id, order_id)
    items = [{"lineItemNumber": line["lineItemNumber"], "status": _line_status(line),
              "quantityProvisioningInformation": [{"quantity": line["quantity"],
                                                   "status": _line_status(line)}],
              "attributes": {"objectType": "OrderLineItemProvisioningStatus"}}
             for line in order["lineItems"]]
    return json_response(collection(items, f"/customers/{customer_id}/orders/{order_id}/provisioningstatus"))


# -- subscriptions ------------------------------------------------------------------------------
def _subscription(ctx, customer_id: str, subscription_id: str) -> dict:
    sub = nce.load(ctx.state, subscription_id)
    if sub is None or sub["customerId"] != customer_id or sub["status"] == "pending":
        raise pc_error(404, 20003, f"Subscription {subscription_id} not found.",
                       error_name="SubscriptionNotFound")
    return sub


def list_subscriptions(ctx, customer_id: str):
    require_customer(ctx, customer_id)
    order_id = ctx.request.args.get("order_id")
    if order_id:
        rows = ctx.state.docs("SELECT doc FROM subscriptions WHERE customer_id = ? AND order_id = ?"
                              " AND status != 'pending' ORDER BY seq", (customer_id, order_id))
    else:
        # A subscription exists for partners only once Microsoft has provisioned it.
        rows = ctx.state.docs("SELECT doc FROM subscriptions WHERE customer_id = ? AND"
                              " status != 'pending' ORDER BY seq", (customer_id,))
    items = [nce.render(s, ctx.catalog, ctx.now) for s in rows]
    return json_response(collection(items, f"/customers/{customer_id}/subscriptions"))


def get_subscription(ctx, customer_id: str, subscription_id: str):
    require_customer(ctx, customer_id)
    return json_response(nce.render(_subscription(ctx, customer_id, subscription_id), ctx.catalog, ctx.now))


def azure_entitlements(ctx, customer_id: str, subscription_id: str):
    require_customer(ctx, customer_id)
    sub = _subscription(ctx, customer_id, subscription_id)
    items = []
    if sub.get("azureEntitlementId"):
        items.append({"id": sub["azureEntitlementId"], "friendlyName": "Azure subscription 1",
                      "status": "active" if sub["status"] == "active" else sub["status"],
                      "subscriptionId": sub["id"],
                      "attributes": {"objectType": "AzureEntitlement"}})
    return json_response(collection(items, f"/customers/{customer_id}/subscriptions/{subscription_id}"
                                           "/azureEntitlements"))


def _validate_term(offer, term: str, cycle: str, current_term: str) -> None:
    if term not in offer.terms:
        raise pc_error(400, 800121, f"The term duration {term} is not valid for this offer.")
    if TERM_MONTHS[term] < TERM_MONTHS[current_term]:
        raise pc_error(400, 800122, "The term can only be changed to a longer term.")
    if cycle not in CYCLE_MONTHS:
        raise pc_error(400, 800002, f"Invalid request input: unknown billing cycle {cycle}.")
    if CYCLE_MONTHS[cycle] > TERM_MONTHS[term]:
        raise pc_error(400, 900270, "The billing cycle cannot be longer than the term duration.")
    if cycle not in TERM_BILLING[term]:
        raise pc_error(400, 800002, f"Invalid request input: billing cycle {cycle} is not supported "
                                    f"for term {term}.")


def _validate_quantity(ctx, offer, quantity) -> None:
    if not isinstance(quantity, int) or not offer.minimum_quantity <= quantity <= offer.maximum_quantity:
        raise pc_error(400, 900275, f"The quantity {quantity} is not allowed. It must be between "
                                    f"{offer.minimum_quantity} and {offer.maximum_quantity}.")
    settings = ctx.settings
    if settings["sandboxLimits"] and quantity > settings["maxSeatsPerSubscription"]:
        raise pc_error(403, 800067, "The maximum number of seats per subscription has been reached.",
                       error_name="SandboxLimitExceeded")


def update_subscription(ctx, customer_id: str, subscription_id: str):
    """PATCH with the full subscription. Omitted autoRenewEnabled / scheduledNextTermInstructions
    are reset (autoRenew off, instructions deleted), as Partner Center does."""
    require_customer(ctx, customer_id)
    body = read_json(ctx.request)
    now = ctx.now
    with ctx.state.transaction():
        sub = _subscription(ctx, customer_id, subscription_id)
        if_match = ctx.request.headers.get("If-Match")
        if if_match and if_match.strip('"') != str(sub["etag"]):
            raise pc_error(412, 2055, "Etag is no longer valid.")
        offer = ctx.catalog.offer(sub["offerId"])
        status = (field(body, "status") or sub["status"]).lower()
        quantity = field(body, "quantity", sub["quantity"])
        auto_renew = bool(field(body, "autoRenewEnabled", False))
        current = sub["status"]
        if current == "deleted":
            raise pc_error(400, 2011, "A deleted subscription can't be updated.")
        if current == "expired":
            raise pc_error(400, 800096, "The subscription status can't be updated: it has expired.")
        if current == "pending":
            raise pc_error(409, 800082, "Subscription is not ready to be updated.")
        if status == "deleted":
            if sub.get("termEnd") and not nce.within_window(sub["termStart"], now):
                raise pc_error(400, 900213, "You have passed your 168-hour cancellation window. "
                                            "We are unable to cancel your purchase")
            nce.cancel(ctx.state, ctx.catalog, sub, now)
        elif status == "suspended":
            if quantity != sub["quantity"]:
                raise pc_error(400, 2001 if current == "active" else 800091,
                               "The quantity can't be changed while the subscription is suspended.")
            if auto_renew and current == "suspended":
                raise pc_error(400, 800093, "A suspended subscription is not eligible for auto-renew.")
            sub.update({"status": "suspended", "autoRenewEnabled": False})
        elif status == "active":
            if current == "suspended" and quantity != sub["quantity"]:
                raise pc_error(400, 800091, "A suspended subscription can't be updated.")
            if not offer.is_azure_plan:
                term = field(body, "termDuration") or sub["termDuration"]
                cycle = (field(body, "billingCycle") or sub["billingCycle"]).lower()
                _validate_term(offer, term, cycle, sub["termDuration"])
                _validate_quantity(ctx, offer, quantity)
                if quantity < sub["quantity"]:
                    refundable = sum(b["quantity"] for b in nce.refundable_batches(sub, now))
                    if sub["quantity"] - quantity > refundable:
                        raise pc_error(400, 800090, "Subscription quantity cannot be decreased.")
                nce.change_quantity(ctx.state, ctx.catalog, sub, quantity, now)
                if (term, cycle) != (sub["termDuration"], sub["billingCycle"]):
                    sub.update({"termDuration": term, "billingCycle": cycle})
                    sub["termEnd"] = nce.term_end_after(parse_iso(sub["termStart"]), term)
                sub["scheduledNextTermInstructions"] = _scheduled(
                    ctx, offer, field(body, "scheduledNextTermInstructions"))
                sub["autoRenewEnabled"] = auto_renew
            sub["status"] = "active"
        else:
            raise pc_error(400, 800096, f"The subscription status can't be changed to '{status}'.")
        if field(body, "friendlyName"):
            sub["friendlyName"] = field(body, "friendlyName")
        sub["etag"] += 1
        nce.save(ctx.state, sub)
    return json_response(nce.render(sub, ctx.catalog, now))


def _scheduled(ctx, offer, instructions) -> dict | None:
    if not instructions:
        return None
    product = field(instructions, "product") or {}
    term = field(product, "termDuration") or offer.terms[-1]
    cycle = (field(product, "billingCycle") or "monthly").lower()
    if term not in offer.terms or cycle not in TERM_BILLING[term]:
        raise pc_error(400, 800002, "Invalid request input: scheduledNextTermInstructions has an "
                                    "unsupported term or billing cycle.")
    quantity = field(instructions, "quantity")
    _validate_quantity(ctx, offer, quantity)
    return {"product": {"productId": offer.product_id, "skuId": offer.sku_id,
                        "availabilityId": offer.availability_id, "billingCycle": cycle,
                        "termDuration": term}, "quantity": quantity}


# -- upgrades ------------------------------------------------------------------------------------
def transition_eligibilities(ctx, customer_id: str, subscription_id: str):
    require_customer(ctx, customer_id)
    sub = _subscription(ctx, customer_id, subscription_id)
    offer = ctx.catalog.offer(sub["offerId"])
    kind = ctx.request.args.get("eligibilityType", "immediate")
    items = []
    for target_id in offer.upgrade_targets:
        target = ctx.catalog.offer(target_id)
        errors = [] if sub["status"] == "active" else [
            {"code": 1, "description": "The source subscription is not active."}]
        existing = []
        for other in ctx.state.docs("SELECT doc FROM subscriptions WHERE customer_id = ? AND"
                                    " provisioning_id = ?", (customer_id, target.provisioning_id)):
            sub_errors = []
            if other["status"] != "active":
                sub_errors.append({"code": 1, "description": "Target subscription is not active."})
            if other.get("termEnd") and sub.get("termEnd") and other["termEnd"] < sub["termEnd"]:
                sub_errors.append({"code": 4, "description": "Target subscription ends earlier."})
            if TERM_MONTHS.get(other["termDuration"], 0) < TERM_MONTHS.get(sub["termDuration"], 0):
                sub_errors.append({"code": 3, "description": "Target subscription has a shorter term."})
            existing.append({"isEligible": not sub_errors, "subscriptionId": other["id"],
                             "subscriptionTermDuration": other["termDuration"],
                             "subscriptionBillingCycle": other["billingCycle"], "errors": sub_errors})
        items.append({"catalogItemId": target.catalog_item_id, "title": target.title,
                      "quantity": sub["quantity"], "eligibilityType": kind,
                      "subscriptionEligibilities": existing,
                      "eligibilities": [{"isEligible": not errors, "transitionType": t, "errors": errors}
                                        for t in ("transition_only", "transition_with_license_transfer")],
                      "attributes": {"objectType": "TransitionEligibility"}})
    return json_response(collection(items, f"/customers/{customer_id}/subscriptions/{subscription_id}"
                                           f"/transitionEligibilities?eligibilityType={kind}"))


def create_transition(ctx, customer_id: str, subscription_id: str):
    require_customer(ctx, customer_id)
    body = read_json(ctx.request)
    now = ctx.now
    with ctx.state.transaction():
        source = _subscription(ctx, customer_id, subscription_id)
        offer = ctx.catalog.offer(source["offerId"])
        target = ctx.catalog.offer(field(body, "toCatalogItemId") or "")
        quantity = field(body, "quantity", source["quantity"])
        kind = field(body, "transitionType") or "transition_only"
        if source["status"] != "active":
            raise pc_error(400, 800096, "Only active subscriptions can be upgraded.")
        if target is None or f"{target.product_id}:{target.sku_id}" not in offer.upgrade_targets:
            raise pc_error(400, 800002, "Invalid request input: the target offer is not an eligible "
                                        "upgrade for this subscription.")
        if not isinstance(quantity, int) or not 1 <= quantity <= source["quantity"]:
            raise pc_error(400, 900275, f"The quantity {quantity} is not allowed for this transition.")
        to_id = field(body, "toSubscriptionId")
        existing = _subscription(ctx, customer_id, to_id) if to_id else None
        moved_to = _upgrade(ctx, source, offer, target, quantity, existing, now)
        if kind == "transition_with_license_transfer" and offer.provisioning_id != target.provisioning_id:
            ctx.state.execute(
                "UPDATE OR IGNORE user_licenses SET sku_id = ? WHERE rowid IN (SELECT rowid FROM"
                " user_licenses WHERE tenant_id = ? AND sku_id = ? LIMIT ?)",
                (target.provisioning_id, customer_id, offer.provisioning_id, quantity))
        transition = {"id": new_id(), "fromCatalogItemId": offer.catalog_item_id,
                      "fromSubscriptionId": subscription_id, "toCatalogItemId": target.catalog_item_id,
                      "toSubscriptionId": moved_to["id"], "quantity": quantity,
                      "termDuration": field(body, "termDuration") or source["termDuration"],
                      "billingCycle": field(body, "billingCycle") or source["billingCycle"],
                      "transitionType": kind, "status": "Completed",
                      "events": [{"name": "Conversion", "status": "Started", "timestamp": iso(now)}],
                      "attributes": {"objectType": "Transition"}}
        stored = {**transition, "events": transition["events"] + [
            {"name": "Conversion", "status": "Completed", "timestamp": iso(now)}]}
        ctx.state.execute("INSERT INTO transitions (subscription_id, doc) VALUES (?, ?)",
                          (subscription_id, json.dumps(stored)))
    return json_response({**transition, "status": "Started"})


def _upgrade(ctx, source: dict, offer, target, quantity: int, existing: dict | None, now) -> dict:
    """Move `quantity` seats of `source` to `target` and post the `convert` lines.

    "Cancellation windows are not applied to upgrades": moved seats keep the source's window, and the
    lines run from today to the end of the charge cycle holding today, with no 24-hour full refund. The
    source is credited at its old price, the target charged at its price; a partial upgrade's new
    subscription shares the source's term and cycle and is never charged as a fresh purchase."""
    inherited = iso(parse_iso(source["termStart"]) + nce.WINDOW)
    old_unit = offer.unit_price(source["termDuration"], source["billingCycle"])
    new_unit = target.unit_price(source["termDuration"], source["billingCycle"])
    full = quantity == source["quantity"] and existing is None
    nce.post(ctx.state, ctx.catalog, source, nce.convert_lines(source, source["quantity"],
                                                                 source["quantity"] - quantity, now, old_unit),
             charge_type="convert", now=now, offer_id=offer.catalog_item_id)
    source["etag"] += 1
    if full:
        # A full upgrade keeps the subscription id.
        source.update({"offerId": target.catalog_item_id, "provisioningId": target.provisioning_id,
                       "offerName": target.title, "friendlyName": target.title})
        # The seats were converted today at the new price: they keep their windows but lose the
        # 24-hour full refund (which would give back a purchase-day charge at a price never paid).
        for batch in source["batches"]:
            batch["windowEnd"] = iso(nce.batch_window_end(batch))
        nce.post(ctx.state, ctx.catalog, source, nce.convert_lines(source, 0, quantity, now, new_unit),
                 charge_type="convert", now=now)
        nce.save(ctx.state, source)
        return source
    source["quantity"] -= quantity
    source["batches"] = [{"quantity": source["quantity"], "addedAt": source["termStart"]}]
    if existing is not None:
        before = existing["quantity"]
        existing["quantity"] += quantity
        existing["batches"].append({"quantity": quantity, "addedAt": iso(now), "windowEnd": inherited})
        existing["etag"] += 1
        lines = nce.convert_lines(existing, before, existing["quantity"], now,
                                  target.unit_price(existing["termDuration"], existing["billingCycle"]))
        moved_to = existing
    else:
        # Partial upgrade: a coterminous new subscription, billed only for what is left of the cycle.
        moved_to = nce.purchase(ctx.state, ctx.catalog, customer_id=source["customerId"], offer=target,
                                quantity=quantity, term=source["termDuration"], billing_cycle=source["billingCycle"],
                                friendly_name=target.title, order_id=short_id(), at=now, status="active",
                                coterminous_with=source)
        lines = nce.convert_lines(moved_to, 0, quantity, now, new_unit)
    nce.post(ctx.state, ctx.catalog, moved_to, lines, charge_type="convert", now=now)
    nce.save(ctx.state, moved_to)
    nce.save(ctx.state, source)
    return moved_to


def list_transitions(ctx, customer_id: str, subscription_id: str):
    require_customer(ctx, customer_id)
    _subscription(ctx, customer_id, subscription_id)
    items = ctx.state.docs("SELECT doc FROM transitions WHERE subscription_id = ? ORDER BY seq",
                           (subscription_id,))
    return json_response(collection(items, f"/customers/{customer_id}/subscriptions/{subscription_id}"
                                           "/transitions"))


P = "/partnercenter/v1/customers/<customer_id>"
ROUTES = [
    Rule(f"{P}/carts", endpoint=create_cart, methods=["POST"]),
    Rule(f"{P}/carts/<cart_id>", endpoint=get_cart, methods=["GET"]),
    Rule(f"{P}/carts/<cart_id>", endpoint=update_cart, methods=["PUT"]),
    Rule(f"{P}/carts/<cart_id>/checkout", endpoint=checkout, methods=["POST"]),
    Rule(f"{P}/orders", endpoint=list_orders, methods=["GET"]),
    Rule(f"{P}/orders/<order_id>", endpoint=get_order, methods=["GET"]),
    Rule(f"{P}/orders/<order_id>/provisioningstatus", endpoint=order_provisioning_status,
         methods=["GET"]),
    Rule(f"{P}/subscriptions", endpoint=list_subscriptions, methods=["GET"]),
    Rule(f"{P}/subscriptions/<subscription_id>", endpoint=get_subscription, methods=["GET"]),
    Rule(f"{P}/subscriptions/<subscription_id>", endpoint=update_subscription, methods=["PATCH"]),
    Rule(f"{P}/subscriptions/<subscription_id>/azureEntitlements", endpoint=azure_entitlements,
         methods=["GET"]),
    Rule(f"{P}/subscriptions/<subscription_id>/transitionEligibilities",
         endpoint=transition_eligibilities, methods=["GET"]),
    Rule(f"{P}/subscriptions/<subscription_id>/transitions", endpoint=list_transitions,
         methods=["GET"]),
    Rule(f"{P}/subscriptions/<subscription_id>/transitions", endpoint=create_transition,
         methods=["POST"]),
]
