import msal
import pytest
import requests

from msemulator.seed import FABRIKAM_ID

from .conftest import PC_SCOPE


def add_fault(client, **rule):
    response = client.control("POST", "/faults", json=rule)
    assert response.status_code == 201, response.text
    return response.json()


def test_429_with_retry_after_for_next_n_calls(client):
    token = client.token(PC_SCOPE)
    add_fault(client, pattern="/partnercenter/v1/customers/*/subscriptions", method="GET", status=429,
              retryAfter=7, times=2)
    path = f"/customers/{FABRIKAM_ID}/subscriptions"
    first, second, third = (client.pc("GET", path, token=token) for _ in range(3))
    assert first.status_code == second.status_code == 429 and first.headers["Retry-After"] == "7"
    assert first.json() == {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 7 seconds."}
    assert third.status_code == 200


def test_5xx_in_each_api_shape(client):
    add_fault(client, pattern="/graph/v1.0/users*", status=503, times=1)
    add_fault(client, pattern="/*/oauth2/v2.0/token", status=500, times=1)
    with pytest.raises(msal.exceptions.MsalServiceError, match="HTTP Error: 500"):  # msal raises on 5xx
        client.msal_app(FABRIKAM_ID).acquire_token_for_client(["https://graph.microsoft.com/.default"])
    response = client.graph("GET", "/users", tenant=FABRIKAM_ID)
    assert response.status_code == 503 and response.json()["error"]["code"] == "serviceNotAvailable"


def test_rate_with_seed_is_deterministic(client):
    add_fault(client, pattern="/partnercenter/v1/products", status=500, rate=0.5, seed=42)
    token = client.token(PC_SCOPE)
    codes = [client.pc("GET", "/products?country=US&targetView=OnlineServices", token=token).status_code
             for _ in range(12)]
    assert 0 < codes.count(500) < 12
    client.control("POST", "/reset")
    add_fault(client, pattern="/partnercenter/v1/products", status=500, rate=0.5, seed=42)
    token = client.token(PC_SCOPE)
    assert codes == [client.pc("GET", "/products?country=US&targetView=OnlineServices", token=token).status_code
                     for _ in range(12)]


def test_latency_drop_and_hang(client):
    token = client.token(PC_SCOPE)
    add_fault(client, pattern="/partnercenter/v1/customers", kind="latency", latencyMs=300)
    assert client.pc("GET", "/customers", token=token).elapsed.total_seconds() >= 0.3
    add_fault(client, pattern="/partnercenter/v1/customers", kind="drop")
    with pytest.raises(requests.ConnectionError):
        client.pc("GET", "/customers", token=token)
    add_fault(client, pattern="/partnercenter/v1/customers", kind="hang", hangSeconds=2)
    with pytest.raises(requests.Timeout):
        client.pc("GET", "/customers", token=token, timeout=0.5)
    assert client.pc("GET", "/customers", token=token).status_code == 200


def test_rate_limit_per_route(client):
    token = client.token(PC_SCOPE)
    client.control("POST", "/ratelimits", json={"pattern": "/partnercenter/v1/customers", "limit": 2,
                                               "windowSeconds": 60})
    codes = [client.pc("GET", "/customers", token=token) for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert 1 <= int(codes[2].headers["Retry-After"]) <= 60


def test_request_log_filters(client):
    token = client.token(PC_SCOPE)
    client.pc("GET", "/customers", token=token, headers={"MS-RequestId": "r-1", "MS-CorrelationId": "c-1"})
    client.pc("GET", "/customers", token=token, headers={"MS-RequestId": "r-2"})
    log = client.control("GET", "/requests?requestId=r-1").json()["requests"]
    assert len(log) == 1 and log[0]["headers"]["Ms-Correlationid"] == "c-1"
    assert log[0]["headers"]["Authorization"] == "Bearer ***" and log[0]["status"] == 200
    tokens = client.control("GET", "/requests?method=POST&path=/*/oauth2/v2.0/token").json()["requests"]
    assert tokens and '"client_secret": "***"' in tokens[0]["body"]


def test_settings_and_clock(client):
    assert client.control("PATCH", "/settings", json={"sandboxLimits": False}).json()["sandboxLimits"] is False
    assert client.control("PATCH", "/settings", json={"nope": 1}).status_code == 400
    before = client.control("GET", "/clock").json()["now"]
    assert client.advance(days=1)["now"] > before
    assert client.control("POST", "/clock", json={"days": -1}).status_code == 400
