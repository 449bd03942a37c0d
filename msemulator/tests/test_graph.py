import gzip
import json
import time

from msemulator.graph.common import LICENSE_ADMIN
from msemulator.seed import FABRIKAM_ID, NORTHWIND_ID

from .test_partner_center import BASIC_SKU

PREMIUM_SKU = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
EXCHANGE_SKU = "4b9405b0-7788-4568-add1-99614e613b69"
E5_SKU = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"


def fabrikam(client, method, path, **kwargs):
    return client.graph(method, path, tenant=FABRIKAM_ID, **kwargs)


def a_user(client, usage_location=True, licensed=False):
    users = fabrikam(client, "GET", "/users?$top=999&$select=id,usageLocation,assignedLicenses").json()["value"]
    for user in users:
        if bool(user["usageLocation"]) == usage_location and bool(user["assignedLicenses"]) == licensed:
            return user
    raise AssertionError("no such user")


def test_subscribed_skus_shape(client):
    body = fabrikam(client, "GET", "/subscribedSkus").json()
    assert body["@odata.context"].endswith("$metadata#subscribedSkus")
    premium = next(s for s in body["value"] if s["skuId"] == PREMIUM_SKU)
    assert premium["id"] == f"{FABRIKAM_ID}_{PREMIUM_SKU}" and premium["skuPartNumber"] == "SPB"
    assert premium["prepaidUnits"] == {"enabled": 25, "lockedOut": 0, "suspended": 0, "warning": 0}
    assert premium["consumedUnits"] == 20 and premium["capabilityStatus"] == "Enabled"
    assert {"servicePlanId", "servicePlanName", "provisioningStatus", "appliesTo"} <= set(premium["servicePlans"][0])
    one = fabrikam(client, "GET", f"/subscribedSkus/{premium['id']}").json()
    assert one["skuId"] == PREMIUM_SKU
    assert fabrikam(client, "GET", "/subscribedSkus/not-an-id").status_code == 400


def test_users_default_properties_select_and_paging(client):
    body = fabrikam(client, "GET", "/users?$top=5").json()
    assert set(body["value"][0]) == {"businessPhones", "displayName", "givenName", "jobTitle", "mail",
                                     "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                                     "userPrincipalName", "id"}
    assert "$skiptoken=" in body["@odata.nextLink"]
    created = client.control("POST", f"/tenants/{FABRIKAM_ID}/users", json={"count": 1000}).json()
    assert created["total"] == 1301
    seen, url = [], "/users?$top=999&$select=id,accountEnabled"
    while url:
        page = fabrikam(client, "GET", url).json()
        seen += [u["id"] for u in page["value"]]
        url = page.get("@odata.nextLink")
    assert len(seen) == len(set(seen)) == 1301
    assert fabrikam(client, "GET", "/users?$top=1000").json()["error"]["code"] == "Request_BadRequest"


def test_users_filter_and_count(client):
    user = fabrikam(client, "GET", "/users?$top=1&$skiptoken=eyJhZnRlciI6IDEwfQ==").json()["value"][0]
    upn = user["userPrincipalName"]
    found = fabrikam(client, "GET", f"/users?$filter=userPrincipalName eq '{upn.upper()}'").json()["value"]
    assert [u["id"] for u in found] == [user["id"]]
    assert fabrikam(client, "GET", f"/users?$filter=mail eq '{user['mail']}'").json()["value"][0]["id"] == user["id"]
    prefix = user["displayName"][:3]
    names = fabrikam(client, "GET", f"/users?$filter=startswith(displayName,'{prefix}')&$top=999").json()["value"]
    assert names and all(n["displayName"].lower().startswith(prefix.lower()) for n in names)
    headers = {"ConsistencyLevel": "eventual"}
    disabled = fabrikam(client, "GET", "/users?$filter=accountEnabled eq false&$count=true&$select=accountEnabled",
                        headers=headers).json()
    assert disabled["@odata.count"] == len(disabled["value"]) > 0
    assert not any(u["accountEnabled"] for u in disabled["value"])
    licensed = fabrikam(client, "GET", f"/users?$filter=assignedLicenses/any(x:x/skuId eq {PREMIUM_SKU})"
                                       "&$count=true", headers=headers).json()
    assert licensed["@odata.count"] == 20
    no_header = f"/users?$filter=assignedLicenses/any(x:x/skuId eq {PREMIUM_SKU})"
    assert fabrikam(client, "GET", no_header).status_code == 400
    assert fabrikam(client, "GET", "/users?$filter=city eq 'Paris'").status_code == 400
    count = fabrikam(client, "GET", "/users/$count", headers=headers)
    assert count.text == "301"


def test_sign_in_activity_needs_premium(client):
    users = fabrikam(client, "GET", "/users?$select=id,signInActivity&$top=999").json()["value"]
    dates = [u["signInActivity"]["lastSignInDateTime"] for u in users if "signInActivity" in u]
    assert dates and len(dates) < len(users)
    client.pc("POST", f"/customers/{NORTHWIND_ID}/applicationconsents", json={
        "applicationId": client.msal_app().client_id, "applicationGrants": [
            {"enterpriseApplicationId": "00000003-0000-0000-c000-000000000000",
             "scope": "User.Read.All,AuditLog.Read.All"}]})
    denied = client.graph("GET", "/users?$select=id,signInActivity", tenant=NORTHWIND_ID)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


def test_create_get_update_user(client):
    domain = "fabrikamdemo.onmicrosoft.com"
    body = {"accountEnabled": True, "displayName": "Jane Roe", "mailNickname": "jane.roe",
            "userPrincipalName": f"jane.roe@{domain}", "passwordProfile": {"password": "x!Y2abcdef"}}
    created = fabrikam(client, "POST", "/users", json=body)
    assert created.status_code == 201 and created.json()["userPrincipalName"] == f"jane.roe@{domain}"
    assert fabrikam(client, "POST", "/users", json=body).json()["error"]["message"].startswith("Another object")
    assert fabrikam(client, "POST", "/users", json={**body, "userPrincipalName": "x@other.com"}).status_code == 400
    assert fabrikam(client, "PATCH", f"/users/jane.roe@{domain}", json={"usageLocation": "DE"}).status_code == 204
    got = fabrikam(client, "GET", f"/users/{created.json()['id']}?$select=usageLocation,accountEnabled").json()
    assert got["usageLocation"] == "DE" and got["accountEnabled"] is True
    assert fabrikam(client, "GET", "/users/nobody@x.com").json()["error"]["code"] == "Request_ResourceNotFound"


def test_assign_license_rules(client):
    user = a_user(client)
    url = f"/users/{user['id']}/assignLicense"
    missing = fabrikam(client, "POST", url, json={"addLicenses": [{"skuId": EXCHANGE_SKU}]}).json()
    assert missing["error"]["message"].endswith("The missing parameters are: removeLicenses.")
    ok = fabrikam(client, "POST", url, json={"addLicenses": [{"skuId": EXCHANGE_SKU, "disabledPlans": []}],
                                             "removeLicenses": []})
    assert ok.status_code == 200 and ok.json()["assignedLicenses"][0]["skuId"] == EXCHANGE_SKU
    details = fabrikam(client, "GET", f"/users/{user['id']}/licenseDetails").json()["value"]
    assert details[0]["skuPartNumber"] == "EXCHANGESTANDARD" and details[0]["servicePlans"]
    nowhere = a_user(client, usage_location=False)
    bad = fabrikam(client, "POST", f"/users/{nowhere['id']}/assignLicense",
                   json={"addLicenses": [{"skuId": EXCHANGE_SKU}], "removeLicenses": []}).json()
    assert bad["error"]["message"] == "License assignment cannot be done for user with invalid usage location."
    foreign = fabrikam(client, "POST", url, json={"addLicenses": [{"skuId": E5_SKU}], "removeLicenses": []}).json()
    assert foreign["error"]["message"] == f"License {E5_SKU} does not correspond to a valid company License."
    assert "Edm.Guid" in fabrikam(client, "POST", url, json={"addLicenses": [{"skuId": "x"}],
                                                             "removeLicenses": []}).json()["error"]["message"]
    for _ in range(5):
        free = a_user(client)
        fabrikam(client, "POST", f"/users/{free['id']}/assignLicense",
                 json={"addLicenses": [{"skuId": PREMIUM_SKU}], "removeLicenses": []})
    full = fabrikam(client, "POST", f"/users/{a_user(client)['id']}/assignLicense",
                    json={"addLicenses": [{"skuId": PREMIUM_SKU}], "removeLicenses": []}).json()
    assert "does not have any available licenses" in full["error"]["message"]


def test_batch_limits_and_dependencies(client):
    user = a_user(client)
    requests = [{"id": str(i), "method": "GET", "url": f"/users/{user['id']}"} for i in range(1, 20)]
    requests.append({"id": "20", "method": "POST", "url": f"/users/{user['id']}/assignLicense",
                     "dependsOn": ["1"], "headers": {"Content-Type": "application/json"},
                     "body": {"addLicenses": [{"skuId": EXCHANGE_SKU}], "removeLicenses": []}})
    body = fabrikam(client, "POST", "/$batch", json={"requests": requests}).json()
    assert len(body["responses"]) == 20 and {r["status"] for r in body["responses"]} == {200}
    too_many = fabrikam(client, "POST", "/$batch", json={"requests": [*requests, {"id": "21", "method": "GET",
                                                                                  "url": "/users"}]})
    assert too_many.status_code == 400
    failed = fabrikam(client, "POST", "/$batch", json={"requests": [
        {"id": "a", "method": "GET", "url": "/users/missing@x.com"},
        {"id": "b", "method": "GET", "url": "/users", "dependsOn": ["a"]}]}).json()["responses"]
    assert [r["status"] for r in failed] == [404, 424]


def test_gdap_lifecycle_gates_user_calls(client):
    rel = client.graph("POST", "/tenantRelationships/delegatedAdminRelationships", json={
        "displayName": "Northwind-Portal", "duration": "P730D",
        "customer": {"tenantId": NORTHWIND_ID, "displayName": "Northwind"},
        "accessDetails": {"unifiedRoles": [{"roleDefinitionId": LICENSE_ADMIN}]}, "autoExtendDuration": "P180D"})
    assert rel.status_code == 201 and rel.headers["Location"].endswith(rel.json()["id"])
    rel = rel.json()
    assert rel["status"] == "created" and rel["@odata.etag"].startswith('W/"')
    base = f"/tenantRelationships/delegatedAdminRelationships/{rel['id']}"
    assert client.graph("PATCH", base, json={"duration": "P365D"}).status_code == 400
    patched = client.graph("PATCH", base, json={"duration": "P365D"}, headers={"If-Match": rel["@odata.etag"]})
    assert patched.json()["duration"] == "P365D"
    assert client.graph("POST", "/tenantRelationships/delegatedAdminRelationships", json={
        "displayName": "X", "duration": "P800D", "customer": {"tenantId": NORTHWIND_ID},
        "accessDetails": {"unifiedRoles": [{"roleDefinitionId": LICENSE_ADMIN}]}}).status_code == 400
    locked = client.graph("POST", f"{base}/requests", json={"action": "lockForApproval"})
    assert locked.status_code == 201 and locked.json()["status"] == "created"
    assert client.graph("GET", base).json()["status"] == "approvalPending"
    assert client.control("POST", f"/gdap/{rel['id']}/approve").json()["status"] == "active"
    assignment = client.graph("POST", f"{base}/accessAssignments", json={
        "accessContainer": {"accessContainerId": "11111111-1111-1111-1111-111111111111",
                            "accessContainerType": "securityGroup"},
        "accessDetails": {"unifiedRoles": [{"roleDefinitionId": LICENSE_ADMIN}]}})
    assert assignment.status_code == 201 and assignment.json()["status"] == "pending"
    assert client.graph("GET", f"{base}/accessAssignments").json()["value"][0]["status"] == "active"
    token = client.user_token(["https://graph.microsoft.com/.default"], tenant=NORTHWIND_ID)
    user = client.graph("GET", "/users?$top=1", token=token).json()["value"][0]
    assert client.graph("PATCH", f"/users/{user['id']}", token=token, json={"usageLocation": "US"}).status_code == 403
    assert client.graph("POST", f"/users/{user['id']}/assignLicense", token=token, json={
        "addLicenses": [{"skuId": BASIC_SKU}], "removeLicenses": []}).status_code in (200, 400)
    client.advance(days=366)
    assert client.graph("GET", base).json()["status"] == "active"  # auto-extended by 180 days
    assert client.graph("GET", "/tenantRelationships/delegatedAdminRelationships?$filter=status eq 'active'"
                        ).json()["value"]


def test_unbilled_usage_export(client):
    start = client.graph("POST", "/reports/partners/billing/usage/unbilled/export",
                         json={"currencyCode": "USD", "billingPeriod": "last", "attributeSet": "full"})
    assert start.status_code == 202
    location = start.headers["Location"]
    first = client.graph("GET", location).json()
    assert first["status"] == "running"
    done = client.graph("GET", location).json()
    assert done["@odata.type"] == "#microsoft.graph.partners.billing.exportSuccessOperation"
    manifest = client.graph("GET", done["resourceLocation@odata.navigationLink"]).json()
    assert manifest["dataFormat"] == "compressedJSON" and manifest["blobCount"] == 1
    blob = client.http.get(f"{manifest['rootDirectory']}/{manifest['blobs'][0]['name']}?{manifest['sasToken']}")
    rows = [json.loads(line) for line in gzip.decompress(blob.content).decode().splitlines()]
    assert rows and {"CustomerId", "SubscriptionId", "UsageDate", "Quantity", "MeterName"} <= set(rows[0])
    assert client.http.get(f"{manifest['rootDirectory']}/{manifest['blobs'][0]['name']}?sig=x").status_code == 403


def test_ten_thousand_users_page_quickly(client):
    client.control("POST", f"/tenants/{FABRIKAM_ID}/users", json={"count": 10000})
    token = client.token(["https://graph.microsoft.com/.default"], FABRIKAM_ID)
    started, url, total = time.monotonic(), "/users?$top=999&$select=id,userPrincipalName", 0
    while url:
        page = fabrikam(client, "GET", url, token=token).json()
        total += len(page["value"])
        url = page.get("@odata.nextLink")
    assert total == 10301 and time.monotonic() - started < 10


def test_billed_export_without_data_fails(client):
    start = client.graph("POST", "/reports/partners/billing/usage/billed/export",
                         json={"invoiceId": "G000000404", "attributeSet": "basic"})
    client.graph("GET", start.headers["Location"])
    failed = client.graph("GET", start.headers["Location"]).json()
    assert failed["status"] == "failed" and failed["error"] == {"code": "5000", "message": "No data available"}


def test_sign_in_activity_caps_the_page_size(client):
    client.control("POST", f"/tenants/{FABRIKAM_ID}/users", json={"count": 400})
    plain = fabrikam(client, "GET", "/users?$select=id&$top=999").json()
    assert len(plain["value"]) == 701 and "@odata.nextLink" not in plain
    first = fabrikam(client, "GET", "/users?$select=id,signInActivity&$top=999").json()
    assert len(first["value"]) == 500 and "$top=999" in first["@odata.nextLink"]
    rest = fabrikam(client, "GET", first["@odata.nextLink"]).json()
    assert len(rest["value"]) == 201 and "@odata.nextLink" not in rest
    assert not {u["id"] for u in first["value"]} & {u["id"] for u in rest["value"]}
    small = fabrikam(client, "GET", "/users?$select=id,signInActivity&$top=50").json()
    assert len(small["value"]) == 50


def test_batch_inner_urls_with_or_without_leading_slash(client):
    user = a_user(client)
    body = fabrikam(client, "POST", "/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": f"/users/{user['id']}?$select=id"},
        {"id": "2", "method": "GET", "url": f"users/{user['id']}?$select=id"},
        {"id": "3", "method": "GET", "url": "subscribedSkus"}]}).json()
    statuses = {r["id"]: r["status"] for r in body["responses"]}
    assert statuses == {"1": 200, "2": 200, "3": 200}
    by_id = {r["id"]: r["body"] for r in body["responses"]}
    assert by_id["1"]["id"] == by_id["2"]["id"] == user["id"]


def test_unauthorized_graph_calls_carry_a_challenge(client):
    missing = client.http.get(f"{client.base}/graph/v1.0/users")
    assert missing.status_code == 401
    challenge = missing.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'client_id="00000003-0000-0000-c000-000000000000"' in challenge
    assert "authorization_uri=" in challenge and "error=" not in challenge
    bad = fabrikam(client, "GET", "/users", token="not-a-token")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
