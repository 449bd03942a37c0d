"""Microsoft's modelled throttling: Graph's identity-and-access budgets and Partner Center's per-customer limit."""

import uuid

from msemulator.config import DEFAULT_CLIENT_ID
from msemulator.seed import FABRIKAM_ID

from .conftest import GRAPH_SCOPE, PC_SCOPE

PREMIUM_SKU = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"


def throttle(client, **changes):
    response = client.control("PATCH", "/throttling", json=changes)
    assert response.status_code == 200, response.text
    return response.json()


def test_on_by_default_with_microsofts_figures_and_reset_restores_them(client):
    defaults = client.control("GET", "/throttling").json()
    assert defaults["enabled"] is True
    assert defaults["graph"]["resourceUnits"] == {"S": 3500, "M": 5000, "L": 8000}
    assert (defaults["graph"]["writes"], defaults["graph"]["writeWindowSeconds"]) == (3000, 150)
    throttle(client, graph={"writes": 3})
    assert client.control("PATCH", "/throttling", json={"graph": {"nonsense": 1}}).status_code == 400
    client.control("POST", "/reset")
    assert client.control("GET", "/throttling").json()["graph"]["writes"] == 3000


def test_graph_charges_resource_units_and_retry_after_is_the_time_remaining(client):
    # Fabrikam has 300 users: a medium tenant. GET /users costs 2 units, 1 with $select.
    throttle(client, graph={"resourceUnits": {"M": 10}})
    token = client.token(GRAPH_SCOPE, FABRIKAM_ID)
    statuses = [client.graph("GET", "/users", tenant=FABRIKAM_ID, token=token).status_code for _ in range(5)]
    assert statuses == [200] * 5
    refused = client.graph("GET", "/users", tenant=FABRIKAM_ID, token=token,
                           headers={"client-request-id": "c0ffee00-0000-4000-8000-000000000001"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "TooManyRequests"
    assert refused.headers["client-request-id"] == "c0ffee00-0000-4000-8000-000000000001"
    assert refused.headers["x-ms-throttle-scope"] == f"Tenant_Application/Read/{DEFAULT_CLIENT_ID}/{FABRIKAM_ID}"
    assert refused.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    first_wait = int(refused.headers["Retry-After"])
    assert 1 <= first_wait <= 10

    client.advance(seconds=4)
    later = client.graph("GET", "/users", tenant=FABRIKAM_ID, token=token)
    assert later.status_code == 429
    assert first_wait - 5 <= int(later.headers["Retry-After"]) <= first_wait - 4  # what is left, not the window

    client.advance(seconds=first_wait)
    assert client.graph("GET", "/users", tenant=FABRIKAM_ID, token=token).status_code == 200
    assert client.control("GET", "/throttling").json()["throttled"] == {"graph": 2}


def test_each_request_in_a_batch_is_charged_against_the_write_quota(client):
    throttle(client, graph={"writes": 3})
    token = client.token(GRAPH_SCOPE, FABRIKAM_ID)
    page = client.graph("GET", "/users?$top=50&$select=id,usageLocation", tenant=FABRIKAM_ID, token=token).json()
    users = [u for u in page["value"] if u.get("usageLocation")][:5]
    body = {"addLicenses": [{"skuId": PREMIUM_SKU, "disabledPlans": []}], "removeLicenses": []}
    batch = {"requests": [{"id": str(n), "method": "POST", "url": f"/users/{u['id']}/assignLicense",
                           "headers": {"Content-Type": "application/json"}, "body": body}
                          for n, u in enumerate(users)]}
    response = client.graph("POST", "/$batch", tenant=FABRIKAM_ID, token=token, json=batch)
    assert response.status_code == 200  # the envelope itself is not charged
    items = sorted(response.json()["responses"], key=lambda item: int(item["id"]))
    assert [item["status"] for item in items] == [200, 200, 200, 429, 429]
    assert all(int(item["headers"]["Retry-After"]) >= 1 for item in items[3:])
    assert items[3]["headers"]["x-ms-throttle-information"] == "WriteLimitExceeded"


def test_partner_center_limits_per_customer_and_echoes_the_ids(client):
    throttle(client, partnerCenter={"perCustomer": 3})
    token = client.token(PC_SCOPE)
    path = f"/customers/{FABRIKAM_ID}/subscriptions"
    assert [client.pc("GET", path, token=token).status_code for _ in range(3)] == [200] * 3
    ids = {"MS-RequestId": str(uuid.uuid4()), "MS-CorrelationId": str(uuid.uuid4())}
    refused = client.pc("GET", path, token=token, headers=ids)
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert refused.json() == {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {wait} seconds."}
    assert refused.headers["MS-RequestId"] == ids["MS-RequestId"]
    assert refused.headers["MS-CorrelationId"] == ids["MS-CorrelationId"]
    # Other customers and operations Microsoft does not list keep their own budgets.
    assert client.pc("GET", "/customers", token=token).status_code == 200
    client.advance(seconds=wait)
    assert client.pc("GET", path, token=token).status_code == 200


def test_disabled_throttling_answers_everything(client):
    throttle(client, enabled=False, graph={"resourceUnits": {"M": 1}})
    token = client.token(GRAPH_SCOPE, FABRIKAM_ID)
    assert {client.graph("GET", "/users", tenant=FABRIKAM_ID, token=token).status_code for _ in range(3)} == {200}
