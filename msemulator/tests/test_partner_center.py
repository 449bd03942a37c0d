import csv
import io
import uuid
from datetime import date, datetime
from decimal import Decimal

from msemulator.partner_center import nce
from msemulator.partner_center.customers import MCA_TEMPLATE_ID
from msemulator.seed import FABRIKAM_ID, NORTHWIND_ID

from .conftest import PC_SCOPE, assert_pc_collection, assert_pc_error

BASIC = "CFQ7TTC0LH18:0001:CFQ7TTC0K971"
STANDARD = "CFQ7TTC0LDPB:0001:CFQ7TTC0K9DK"
BASIC_SKU = "3b555118-da6a-4418-894f-7df1e2096870"


def new_customer(client, domain=None):
    domain = domain or f"t{uuid.uuid4().hex[:10]}.onmicrosoft.com"
    body = {"companyProfile": {"domain": domain}, "billingProfile": {
        "email": "admin@contoso.com", "culture": "en-US", "language": "en", "companyName": "Contoso Ltd",
        "defaultAddress": {"firstName": "Jane", "lastName": "Doe", "addressLine1": "One Microsoft Way",
                           "city": "Redmond", "state": "WA", "postalCode": "98052", "country": "US"}}}
    response = client.pc("POST", "/customers", json=body, headers={"MS-RequestId": str(uuid.uuid4())})
    assert response.status_code == 201, response.text
    return response.json()


def accept_mca(client, customer_id):
    return client.pc("POST", f"/customers/{customer_id}/agreements", json={
        "primaryContact": {"firstName": "Jane", "lastName": "Doe", "email": "jane@contoso.com"},
        "templateId": MCA_TEMPLATE_ID, "dateAgreed": "2024-01-01T00:00:00Z",
        "type": "MicrosoftCustomerAgreement"})


def buy(client, customer_id, item=BASIC, quantity=5, term="P1Y", cycle="monthly", request_id=None):
    cart = client.pc("POST", f"/customers/{customer_id}/carts", json={"lineItems": [
        {"id": 0, "catalogItemId": item, "quantity": quantity, "billingCycle": cycle, "termDuration": term}]})
    assert cart.status_code == 201, cart.text
    return client.pc("POST", f"/customers/{customer_id}/carts/{cart.json()['id']}/checkout",
                     headers={"MS-RequestId": request_id or str(uuid.uuid4())})


def subscription(client, customer_id, subscription_id):
    return client.pc("GET", f"/customers/{customer_id}/subscriptions/{subscription_id}").json()


def patch(client, customer_id, sub, **changes):
    return client.pc("PATCH", f"/customers/{customer_id}/subscriptions/{sub['id']}", json={**sub, **changes})


def test_domain_availability_head_semantics(client):
    assert client.pc("HEAD", "/domains/fabrikamdemo.onmicrosoft.com").status_code == 200
    assert client.pc("HEAD", "/domains/free-name-123.onmicrosoft.com").status_code == 404


def test_create_customer_shape_and_duplicate_domain(client):
    created = new_customer(client, "contoso123.onmicrosoft.com")
    assert created["id"] == created["companyProfile"]["tenantId"]
    assert created["attributes"]["objectType"] == "Customer"
    assert created["billingProfile"]["attributes"]["objectType"] == "CustomerBillingProfile"
    assert created["userCredentials"]["userName"] == "admin"
    assert created["customDomains"] == ["contoso123.onmicrosoft.com"]
    fetched = client.pc("GET", f"/customers/{created['id']}").json()
    assert "userCredentials" not in fetched
    body = {"companyProfile": {"domain": "contoso123.onmicrosoft.com"}, "billingProfile": {
        "email": "a@b.c", "culture": "en-US", "language": "en", "companyName": "X",
        "defaultAddress": {"country": "US"}}}
    assert_pc_error(client.pc("POST", "/customers", json=body), 409, 600024)
    assert_pc_error(client.pc("GET", f"/customers/{uuid.uuid4()}"), 404, 60003)


def test_customer_list_continuation_paging(client):
    for _ in range(3):
        new_customer(client)
    seen, response = [], client.pc("GET", "/customers?size=2")
    while True:
        body = response.json()
        assert_pc_collection(body)
        seen += [c["id"] for c in body["items"]]
        if "next" not in body["links"]:
            break
        nxt = body["links"]["next"]
        header = {h["key"]: h["value"] for h in nxt["headers"]}
        response = client.http.get(f"{client.base}/partnercenter/v1{nxt['uri']}", headers={
            **header, "Authorization": f"Bearer {client.token(PC_SCOPE)}"})
    assert len(seen) == len(set(seen)) == 5


def test_catalog_shapes(client):
    products = client.pc("GET", "/products?country=US&targetView=OnlineServices").json()
    assert_pc_collection(products)
    titles = {p["title"] for p in products["items"]}
    assert {"Microsoft 365 Business Basic", "Microsoft 365 E5", "Dynamics 365 Business Central Essentials"} <= titles
    azure = client.pc("GET", "/products?country=US&targetView=MicrosoftAzure").json()
    assert [p["id"] for p in azure["items"]] == ["DZH318Z0BPS6"]
    sku = client.pc("GET", "/products/CFQ7TTC0LH18/skus?country=US").json()["items"][0]
    assert sku["dynamicAttributes"]["provisioningId"] == BASIC_SKU
    assert set(sku["supportedBillingCycles"]) == {"annual", "monthly"}
    availability = client.pc("GET", "/products/CFQ7TTC0LH18/skus/0001/availabilities?country=US").json()["items"][0]
    assert availability["catalogItemId"] == BASIC
    assert {(t["duration"], t["billingCycle"]) for t in availability["terms"]} == {
        ("P1M", "Monthly"), ("P1Y", "Monthly"), ("P1Y", "Annual")}
    options = availability["terms"][0]["cancellationPolicies"][0]["refundOptions"]
    assert [(o["type"], o["expiresAfter"]) for o in options] == [("Full", "P1D"), ("Partial", "P7D")]
    assert_pc_error(client.pc("GET", "/products/NOPE?country=US"), 404, 400013)


def test_price_sheet_applies_nce_uplifts(client):
    response = client.http.get(
        f"{client.base}/partnercenter/v1.0/sales/pricesheets(Market='US',PricesheetView='updatedlicensebased')/$value",
        headers={"Authorization": f"Bearer {client.token(PC_SCOPE)}"})
    rows = [r for r in csv.DictReader(io.StringIO(response.text)) if r["ProductId"] == "CFQ7TTC0LH18"]
    prices = {(r["TermDuration"], r["BillingPlan"]): r["UnitPrice"] for r in rows}
    assert prices == {("P1M", "Monthly"): "7.20", ("P1Y", "Monthly"): "6.30", ("P1Y", "Annual"): "72.00"}


def test_purchase_requires_mca_then_flows_to_graph(client):
    customer = new_customer(client)
    assert_pc_error(buy(client, customer["id"]), 403, 13605)
    assert accept_mca(client, customer["id"]).status_code == 201
    assert_pc_error(accept_mca(client, customer["id"]), 409, 600061)
    assert_pc_collection(client.pc("GET", f"/customers/{customer['id']}/agreements").json())
    result = buy(client, customer["id"], quantity=7)
    assert result.status_code == 201
    order = result.json()["orders"][0]
    assert order["attributes"]["objectType"] == "Order" and order["status"] == "completed"
    line = order["lineItems"][0]
    assert line["subscriptionId"]
    assert line["offerId"] == BASIC and line["quantity"] == 7 and line["pricing"]["listPrice"] == 6.3
    assert client.pc("GET", f"/customers/{customer['id']}/orders/{order['id']}").json()["status"] == "completed"
    assert_pc_collection(client.pc("GET", f"/customers/{customer['id']}/orders").json())
    subs = client.pc("GET", f"/customers/{customer['id']}/subscriptions?order_id={order['id']}").json()
    assert_pc_collection(subs)
    sub = subs["items"][0]
    assert sub["status"] == "active" and sub["autoRenewEnabled"] is True
    assert sub["refundableQuantity"] == {"totalQuantity": 7, "details": [
        {"quantity": 7, "allowedUntilDateTime": sub["cancellationAllowedUntilDate"]}]}
    consent = {"applicationId": client.msal_app().client_id, "applicationGrants": [
        {"enterpriseApplicationId": "00000003-0000-0000-c000-000000000000", "scope": "Directory.Read.All"}]}
    client.pc("POST", f"/customers/{customer['id']}/applicationconsents", json=consent)
    skus = client.graph("GET", "/subscribedSkus", tenant=customer["id"]).json()["value"]
    assert [(s["skuId"], s["prepaidUnits"]["enabled"]) for s in skus] == [(BASIC_SKU, 7)]


def test_checkout_is_idempotent_on_ms_request_id_and_echoes_correlation(client):
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    cart = client.pc("POST", f"/customers/{customer['id']}/carts", json={"lineItems": [
        {"catalogItemId": BASIC, "quantity": 2, "billingCycle": "monthly", "termDuration": "P1M"}]}).json()
    headers = {"MS-RequestId": "req-1", "MS-CorrelationId": "corr-1"}
    first = client.pc("POST", f"/customers/{customer['id']}/carts/{cart['id']}/checkout", headers=headers)
    again = client.pc("POST", f"/customers/{customer['id']}/carts/{cart['id']}/checkout", headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers["MS-CorrelationId"] == "corr-1" and again.headers["MS-RequestId"] == "req-1"
    assert client.pc("GET", f"/customers/{customer['id']}/subscriptions").json()["totalCount"] == 1
    assert_pc_error(client.pc("POST", f"/customers/{customer['id']}/carts/{cart['id']}/checkout",
                              headers={"MS-RequestId": "req-2"}), 400, 800065)


def test_cart_line_errors_and_sandbox_limits(client):
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    cart = client.pc("POST", f"/customers/{customer['id']}/carts", json={"lineItems": [
        {"catalogItemId": "BAD:0001:X", "quantity": 1, "billingCycle": "monthly", "termDuration": "P1M"},
        {"catalogItemId": BASIC, "quantity": 2, "billingCycle": "annual", "termDuration": "P1M"},
        {"catalogItemId": BASIC, "quantity": 26, "billingCycle": "monthly", "termDuration": "P1Y"}]}).json()
    assert [line["error"]["errorCode"] for line in cart["lineItems"]] == [10001, 10010, 10009]
    result = client.pc("POST", f"/customers/{customer['id']}/carts/{cart['id']}/checkout").json()
    assert result["orders"] == [] and len(result["orderErrors"]) == 3


def test_nce_cancellation_window(client):
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    sub_id = buy(client, customer["id"]).json()["orders"][0]["lineItems"][0]["subscriptionId"]
    sub = subscription(client, customer["id"], sub_id)
    client.advance(days=3)
    cancelled = patch(client, customer["id"], sub, status="deleted")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "deleted"
    lines = client.pc("GET", "/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems"
                             "&currencycode=USD&period=current").json()["items"]
    refund = [li for li in lines if li["subscriptionId"] == sub_id and li["chargeType"] == "cancelImmediate"]
    assert len(refund) == 1 and refund[0]["subtotal"] < 0
    assert_pc_error(patch(client, customer["id"], cancelled.json(), status="active"), 400, 2011)
    late = buy(client, customer["id"]).json()["orders"][0]["lineItems"][0]["subscriptionId"]
    late_sub = subscription(client, customer["id"], late)
    client.advance(hours=169)
    assert_pc_error(patch(client, customer["id"], late_sub, status="deleted"), 400, 900213)


def test_seat_decrease_only_for_batches_in_their_window(client):
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    sub_id = buy(client, customer["id"], quantity=5).json()["orders"][0]["lineItems"][0]["subscriptionId"]
    client.advance(days=8)
    sub = subscription(client, customer["id"], sub_id)
    assert sub["refundableQuantity"]["totalQuantity"] == 0
    sub = patch(client, customer["id"], sub, quantity=8, autoRenewEnabled=True).json()
    assert sub["refundableQuantity"]["totalQuantity"] == 3
    assert patch(client, customer["id"], sub, quantity=6, autoRenewEnabled=True).json()["quantity"] == 6
    sub = subscription(client, customer["id"], sub_id)
    assert_pc_error(patch(client, customer["id"], sub, quantity=4, autoRenewEnabled=True), 400, 800090)
    assert_pc_error(patch(client, customer["id"], sub, quantity=400, autoRenewEnabled=True), 400, 900275)


def test_patch_omitting_auto_renew_turns_it_off_and_suspend(client):
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    sub_id = buy(client, customer["id"]).json()["orders"][0]["lineItems"][0]["subscriptionId"]
    sub = subscription(client, customer["id"], sub_id)
    body = {k: v for k, v in sub.items() if k != "autoRenewEnabled"}
    updated = client.pc("PATCH", f"/customers/{customer['id']}/subscriptions/{sub_id}", json=body).json()
    assert updated["autoRenewEnabled"] is False
    updated = patch(client, customer["id"], updated, autoRenewEnabled=True).json()
    suspended = patch(client, customer["id"], updated, status="suspended").json()
    assert suspended["status"] == "suspended" and suspended["autoRenewEnabled"] is False
    assert_pc_error(patch(client, customer["id"], suspended, quantity=9), 400, 800091)
    assert patch(client, customer["id"], suspended, status="active").json()["status"] == "active"


def test_term_and_billing_cycle_compatibility(client):
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    monthly = buy(client, customer["id"], term="P1M").json()["orders"][0]["lineItems"][0]["subscriptionId"]
    sub = subscription(client, customer["id"], monthly)
    assert_pc_error(patch(client, customer["id"], sub, billingCycle="annual"), 400, 900270)
    annual = buy(client, customer["id"], term="P1Y", cycle="annual").json()["orders"][0]["lineItems"][0]
    sub = subscription(client, customer["id"], annual["subscriptionId"])
    assert_pc_error(patch(client, customer["id"], sub, termDuration="P1M"), 400, 800122)
    assert_pc_error(patch(client, customer["id"], sub, termDuration="P3Y"), 400, 800121)


def test_renewal_and_expiry_on_the_clock(client):
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    ids = [buy(client, customer["id"], term="P1M").json()["orders"][0]["lineItems"][0]["subscriptionId"]
           for _ in range(2)]
    renewing = subscription(client, customer["id"], ids[0])
    stopping = subscription(client, customer["id"], ids[1])
    patch(client, customer["id"], stopping, autoRenewEnabled=False, scheduledNextTermInstructions=None)
    client.advance(days=32)
    renewed = subscription(client, customer["id"], ids[0])
    assert renewed["status"] == "active" and renewed["effectiveStartDate"] > renewing["effectiveStartDate"]
    assert renewed["refundableQuantity"]["totalQuantity"] == 5
    assert subscription(client, customer["id"], ids[1])["status"] == "expired"
    charges = client.pc("GET", "/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems"
                               "&currencycode=USD&period=current").json()["items"]
    assert "renew" in {li["chargeType"] for li in charges if li["subscriptionId"] == ids[0]}


def test_upgrade_transition(client):
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    sub_id = buy(client, customer["id"], quantity=4).json()["orders"][0]["lineItems"][0]["subscriptionId"]
    eligibilities = client.pc("GET", f"/customers/{customer['id']}/subscriptions/{sub_id}"
                                     "/transitionEligibilities?eligibilityType=immediate").json()
    assert_pc_collection(eligibilities)
    assert STANDARD in {i["catalogItemId"] for i in eligibilities["items"]}
    response = client.pc("POST", f"/customers/{customer['id']}/subscriptions/{sub_id}/transitions", json={
        "fromCatalogItemId": BASIC, "fromSubscriptionId": sub_id, "toCatalogItemId": STANDARD,
        "quantity": 1, "termDuration": "P1Y", "billingCycle": "Monthly", "transitionType": "transition_only"})
    assert response.status_code == 200 and response.json()["events"][0]["name"] == "Conversion"
    subs = client.pc("GET", f"/customers/{customer['id']}/subscriptions").json()["items"]
    assert sorted((s["offerId"], s["quantity"]) for s in subs) == [(STANDARD, 1), (BASIC, 3)]
    assert client.pc("GET", f"/customers/{customer['id']}/subscriptions/{sub_id}/transitions").json()["totalCount"] == 1


def test_fraud_events_old_and_new_model(client):
    assert_pc_error(client.pc("GET", "/fraudEvents"), 403, 900329)
    token = client.user_token(PC_SCOPE)
    old = client.pc("GET", "/fraudEvents", token=token).json()
    assert isinstance(old, list) and len(old) == 1 and "eventType" not in old[0]
    assert isinstance(old[0]["hitCount"], str) and old[0]["isTest"] == "false"
    new = client.pc("GET", "/fraudEvents?EventStatus=Investigating", token=token,
                    headers={"X-NewEventsModel": "true"}).json()
    assert [e["eventType"] for e in new] == ["UsageAnomalyDetection"]
    sub_id = new[0]["subscriptionId"]
    assert_pc_error(client.pc("POST", f"/fraudEvents/subscription/{sub_id}/status", token=token,
                              json={"eventIds": [], "eventStatus": "Resolved"}), 400, 800002)
    updated = client.pc("POST", f"/fraudEvents/subscription/{sub_id}/status", token=token,
                        json={"eventIds": [new[0]["eventId"]], "eventStatus": "Resolved", "resolvedReason": "Fraud"})
    assert updated.json()[0]["eventStatus"] == "Resolved" and updated.json()[0]["resolvedReason"] == "Fraud"
    assert client.pc("GET", f"/fraudEvents?SubscriptionId={sub_id}&EventStatus=Resolved", token=token,
                     headers={"X-NewEventsModel": "true"}).json()[0]["activityLogs"].startswith("[{")


def test_billed_and_unbilled_reconciliation(client):
    query = "provider=onetime&invoicelineitemtype=billinglineitems"
    unbilled = client.pc("GET", f"/invoices/unbilled/lineitems?{query}&currencycode=USD&period=current").json()
    assert_pc_collection(unbilled)
    item = unbilled["items"][0]
    assert item["attributes"]["objectType"] == "OneTimeInvoiceLineItem"
    assert {"customerId", "subscriptionId", "chargeType", "unitPrice", "quantity", "subtotal",
            "chargeStartDate", "chargeEndDate", "productId", "skuId"} <= set(item)
    invoice = client.control("POST", "/billing/close").json()
    billed = client.pc("GET", f"/invoices/{invoice['id']}/lineitems?{query}").json()
    assert billed["totalCount"] == unbilled["totalCount"]
    assert {li["invoiceNumber"] for li in billed["items"]} == {invoice["id"]}
    assert client.pc("GET", f"/invoices/unbilled/lineitems?{query}&currencycode=USD&period=current").json()[
        "totalCount"] == 0
    assert client.pc("GET", "/invoices").json()["items"][0]["id"] == invoice["id"]


def test_seeded_customers_are_listed(client):
    ids = {c["id"] for c in client.pc("GET", "/customers").json()["items"]}
    assert ids == {FABRIKAM_ID, NORTHWIND_ID}


def _seconds_until(client, moment: str) -> float:
    now = datetime.fromisoformat(client.control("GET", "/clock").json()["now"])
    return (datetime.fromisoformat(moment.replace("Z", "+00:00")) - now).total_seconds()


def test_refund_options_full_for_24_hours_then_partial_then_none(client):
    # Subscription resources: RefundOption type "Full" or "Partial", with when it expires; the
    # 24-hour full refund and the 7-day prorated one (new commerce cancellation policy).
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    sub_id = buy(client, customer["id"]).json()["orders"][0]["lineItems"][0]["subscriptionId"]
    sub = subscription(client, customer["id"], sub_id)
    assert [o["type"] for o in sub["refundOptions"]] == ["Full", "Partial"]
    assert sub["refundOptions"][1]["expiresAt"] == sub["cancellationAllowedUntilDate"]
    client.advance(seconds=_seconds_until(client, sub["refundOptions"][0]["expiresAt"]) + 1)
    assert [o["type"] for o in subscription(client, customer["id"], sub_id)["refundOptions"]] == ["Partial"]
    client.advance(seconds=_seconds_until(client, sub["cancellationAllowedUntilDate"]) - 5)
    assert [o["type"] for o in subscription(client, customer["id"], sub_id)["refundOptions"]] == ["Partial"]
    client.advance(seconds=6)
    later = subscription(client, customer["id"], sub_id)
    assert later["refundOptions"] == [] and later["refundableQuantity"]["totalQuantity"] == 0
    assert_pc_error(patch(client, customer["id"], later, status="deleted"), 400, 900213)


def test_cancel_just_inside_the_window_and_within_24_hours_refunds_everything(client):
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    sub_id = buy(client, customer["id"], quantity=10).json()["orders"][0]["lineItems"][0]["subscriptionId"]
    sub = subscription(client, customer["id"], sub_id)
    assert patch(client, customer["id"], sub, status="deleted").status_code == 200
    lines = client.pc("GET", "/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems"
                             "&currencycode=USD&period=current").json()["items"]
    mine = [li for li in lines if li["subscriptionId"] == sub_id]
    charged = sum(li["subtotal"] for li in mine if li["chargeType"] == "new")
    refunded = -sum(li["subtotal"] for li in mine if li["chargeType"] == "cancelImmediate")
    assert refunded == charged == 10 * mine[0]["unitPrice"]
    late = buy(client, customer["id"]).json()["orders"][0]["lineItems"][0]["subscriptionId"]
    late_sub = subscription(client, customer["id"], late)
    client.advance(seconds=_seconds_until(client, late_sub["cancellationAllowedUntilDate"]) - 5)
    assert patch(client, customer["id"], late_sub, status="deleted").status_code == 200


def test_renewal_and_cycle_charges_happen_at_midnight_utc(client):
    # "Renewals are processed after the final day of a term, starting at 12:00 AM UTC the following day."
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    sub_id = buy(client, customer["id"], term="P1M").json()["orders"][0]["lineItems"][0]["subscriptionId"]
    sub = subscription(client, customer["id"], sub_id)
    assert sub["commitmentEndDateTime"].endswith("T23:59:59Z")
    assert sub["billingCycleEndDate"].endswith("T23:59:59Z")
    client.advance(days=32)
    renewed = subscription(client, customer["id"], sub_id)
    assert renewed["effectiveStartDate"].endswith("T00:00:00Z")
    assert renewed["cancellationAllowedUntilDate"].endswith("T00:00:00Z")
    lines = client.pc("GET", "/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems"
                             "&currencycode=USD&period=current").json()["items"]
    renew = [li for li in lines if li["subscriptionId"] == sub_id and li["chargeType"] == "renew"]
    assert renew and renew[0]["chargeStartDate"].endswith("T00:00:00Z")


def test_orders_provision_asynchronously_line_by_line(client):
    client.control("POST", "/reset")  # the fixture's instant mode is not the default
    defaults = client.control("GET", "/settings").json()
    assert defaults["orderProvisioningSeconds"] > 0 and defaults["orderProvisioningTailSeconds"] > 0
    client.control("PATCH", "/settings", json={"orderProvisioningSeconds": 60, "orderProvisioningTailSeconds": 600})
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    cart = client.pc("POST", f"/customers/{customer['id']}/carts", json={"lineItems": [
        {"id": n, "catalogItemId": BASIC, "quantity": 2 + n, "billingCycle": "monthly", "termDuration": "P1Y"}
        for n in range(3)]}).json()
    result = client.pc("POST", f"/customers/{customer['id']}/carts/{cart['id']}/checkout").json()
    order = result["orders"][0]
    assert order["status"] == "pending" and len(order["lineItems"]) == 3
    assert not any("subscriptionId" in line for line in order["lineItems"])
    assert not any(key.startswith("_") for key in order)
    path = f"/customers/{customer['id']}/orders/{order['id']}"
    subs_path = f"/customers/{customer['id']}/subscriptions?order_id={order['id']}"
    assert client.pc("GET", subs_path).json()["items"] == []
    status = client.pc("GET", f"{path}/provisioningstatus").json()["items"]
    assert {s["status"] for s in status} == {"pending"}
    client.advance(seconds=59)
    assert client.pc("GET", path).json()["status"] == "pending"
    seen = []
    for _ in range(70):  # ten-second steps through the whole tail
        client.advance(seconds=10)
        current = client.pc("GET", path).json()
        ids = [line.get("subscriptionId") for line in current["lineItems"]]
        seen.append(sum(1 for i in ids if i))
        if current["status"] == "completed":
            break
    assert current["status"] == "completed" and all(ids)
    assert seen == sorted(seen)  # lines only ever gain their subscription
    subs = client.pc("GET", subs_path).json()["items"]
    assert sorted(s["id"] for s in subs) == sorted(ids) and {s["status"] for s in subs} == {"active"}
    status = client.pc("GET", f"{path}/provisioningstatus").json()["items"]
    assert {s["status"] for s in status} == {"fulfilled"}


def test_a_pending_subscription_is_not_found_until_provisioned(client):
    client.control("PATCH", "/settings", json={"orderProvisioningSeconds": 30, "orderProvisioningTailSeconds": 0})
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    order = buy(client, customer["id"]).json()["orders"][0]
    assert client.pc("GET", f"/customers/{customer['id']}/subscriptions").json()["items"] == []
    client.advance(seconds=31)
    line = client.pc("GET", f"/customers/{customer['id']}/orders/{order['id']}").json()["lineItems"][0]
    assert subscription(client, customer["id"], line["subscriptionId"])["status"] == "active"


def _lines(client, subscription_id):
    items = client.pc("GET", "/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems"
                             "&currencycode=USD&period=current").json()["items"]
    return [li for li in items if li["subscriptionId"] == subscription_id]


def _transition(client, customer_id, sub_id, quantity):
    response = client.pc("POST", f"/customers/{customer_id}/subscriptions/{sub_id}/transitions", json={
        "fromCatalogItemId": BASIC, "fromSubscriptionId": sub_id, "toCatalogItemId": STANDARD,
        "quantity": quantity, "termDuration": "P1Y", "billingCycle": "Monthly", "transitionType": "transition_only"})
    assert response.status_code == 200, response.text
    return response.json()


def test_partial_upgrade_posts_convert_lines_and_inherits_term_cycle_and_window(client):
    # Create a new subscription: "Cancellation windows are not applied to upgrades"; cancellation
    # policy: "Subscriptions created as a result of a partial upgrade inherit the cancellation window
    # from the parent". Billing scenarios (NCE): an upgrade is billed as convert lines for the rest of
    # the charge cycle, the source credited at its price and the target charged at its price.
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    sub_id = buy(client, customer["id"], quantity=20).json()["orders"][0]["lineItems"][0]["subscriptionId"]
    client.advance(days=9, hours=3)
    source = subscription(client, customer["id"], sub_id)
    moved_id = _transition(client, customer["id"], sub_id, 5)["toSubscriptionId"]
    moved = subscription(client, customer["id"], moved_id)
    assert (moved["effectiveStartDate"], moved["commitmentEndDate"], moved["cancellationAllowedUntilDate"],
            moved["billingCycleEndDate"]) == (source["effectiveStartDate"], source["commitmentEndDate"],
                                              source["cancellationAllowedUntilDate"], source["billingCycleEndDate"])
    assert moved["refundableQuantity"]["totalQuantity"] == 0  # the source's window closed two days ago

    new_lines = _lines(client, moved_id)
    assert [li["chargeType"] for li in new_lines] == ["convert"]  # never charged as a fresh purchase
    line = new_lines[0]
    today = client.control("GET", "/clock").json()["now"][:10]
    start, end = line["chargeStartDate"][:10], line["chargeEndDate"][:10]
    assert start == today and end == source["billingCycleEndDate"][:10]
    purchase = next(li for li in _lines(client, sub_id) if li["chargeType"] == "new")
    cycle_days = (date.fromisoformat(purchase["chargeEndDate"][:10])
                  - date.fromisoformat(purchase["chargeStartDate"][:10])).days + 1
    days = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
    assert Decimal(str(line["subtotal"])) == nce.line_total(Decimal(str(line["unitPrice"])), 5, days, cycle_days)

    source_lines = [li for li in _lines(client, sub_id) if li["chargeType"] == "convert"]
    basic_unit = Decimal(str(purchase["unitPrice"]))
    assert [(li["quantity"], Decimal(str(li["subtotal"]))) for li in source_lines] == [
        (20, -nce.line_total(basic_unit, 20, days, cycle_days)), (15, nce.line_total(basic_unit, 15, days, cycle_days))]


def test_full_upgrade_credits_the_old_offer_and_charges_the_new_one(client):
    customer = new_customer(client)
    accept_mca(client, customer["id"])
    sub_id = buy(client, customer["id"], quantity=12).json()["orders"][0]["lineItems"][0]["subscriptionId"]
    client.advance(hours=2)  # inside 24 hours of the purchase: still no full refund for an upgrade
    assert _transition(client, customer["id"], sub_id, 12)["toSubscriptionId"] == sub_id
    upgraded = subscription(client, customer["id"], sub_id)
    assert [o["type"] for o in upgraded["refundOptions"]] == ["Partial"]
    assert upgraded["refundOptions"][0]["expiresAt"] == upgraded["cancellationAllowedUntilDate"]
    # Cancelled straight after (still inside 24 hours of the purchase), the upgraded seats get back
    # what the convert line charged them, from today, not the purchase day's full charge.
    assert patch(client, customer["id"], upgraded, status="deleted").status_code == 200
    lines = _lines(client, sub_id)
    purchase = next(li for li in lines if li["chargeType"] == "new")
    converts = [li for li in lines if li["chargeType"] == "convert"]
    cancel = [li for li in lines if li["chargeType"] == "cancelImmediate"]
    assert [(li["quantity"], li["subtotal"]) for li in cancel] == [(12, -converts[1]["subtotal"])]
    assert [(li["productId"] == purchase["productId"], li["quantity"], li["subtotal"] < 0) for li in converts] == [
        (True, 12, True), (False, 12, False)]
    days = (date.fromisoformat(converts[0]["chargeEndDate"][:10])
            - date.fromisoformat(converts[0]["chargeStartDate"][:10])).days + 1
    cycle_days = (date.fromisoformat(purchase["chargeEndDate"][:10])
                  - date.fromisoformat(purchase["chargeStartDate"][:10])).days + 1
    assert -Decimal(str(converts[0]["subtotal"])) == nce.line_total(Decimal(str(purchase["unitPrice"])), 12, days,
                                                                     cycle_days)
    assert Decimal(str(converts[1]["subtotal"])) == nce.line_total(Decimal(str(converts[1]["unitPrice"])), 12, days,
                                                                    cycle_days)
    assert converts[1]["unitPrice"] > purchase["unitPrice"]
