from msemulator.config import DEFAULT_CLIENT_ID, DEFAULT_PARTNER_TENANT_ID
from msemulator.seed import FABRIKAM_ID, NORTHWIND_ID

from .conftest import GRAPH_SCOPE, PC_SCOPE


def test_discovery_document(client):
    doc = client.http.get(f"{client.base}/{DEFAULT_PARTNER_TENANT_ID}/v2.0/.well-known/openid-configuration").json()
    for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
        assert doc[key].startswith("https://")


def test_msal_client_credentials_over_https(client):
    app = client.msal_app()
    result = app.acquire_token_for_client(PC_SCOPE)
    assert result["token_type"] == "Bearer" and result["expires_in"] > 3000
    assert app.acquire_token_for_client(PC_SCOPE)["token_source"] == "cache"
    assert client.pc("GET", "/customers", token=result["access_token"]).status_code == 200


def test_wrong_secret_is_invalid_client(client):
    result = client.msal_app(secret="nope").acquire_token_for_client(PC_SCOPE)
    assert result["error"] == "invalid_client" and result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215")


def test_unknown_tenant_and_unknown_client(client):
    response = client.http.post(f"{client.base}/nosuchtenant.onmicrosoft.com/oauth2/v2.0/token", data={
        "client_id": DEFAULT_CLIENT_ID, "grant_type": "client_credentials", "scope": PC_SCOPE[0]})
    assert response.status_code == 400 and response.json()["error_codes"] == [90002]
    result = client.msal_app(client_id="00000000-0000-0000-0000-000000000001").acquire_token_for_client(PC_SCOPE)
    assert result["error"] == "unauthorized_client" and result["error_codes"] == [700016]


def test_customer_tenant_requires_consent(client):
    result = client.msal_app(NORTHWIND_ID).acquire_token_for_client(GRAPH_SCOPE)
    assert result["error"] == "unauthorized_client" and result["error_codes"] == [700016]
    consent = {"applicationId": DEFAULT_CLIENT_ID, "applicationGrants": [
        {"enterpriseApplicationId": "00000003-0000-0000-c000-000000000000", "scope": "Directory.Read.All"}]}
    assert client.pc("POST", f"/customers/{NORTHWIND_ID}/applicationconsents", json=consent).status_code == 201
    assert "access_token" in client.msal_app(NORTHWIND_ID).acquire_token_for_client(GRAPH_SCOPE)
    listed = client.pc("GET", f"/customers/{NORTHWIND_ID}/applicationconsents").json()
    assert listed["items"][0]["applicationId"] == DEFAULT_CLIENT_ID


def test_tokens_expire_on_the_emulator_clock(client):
    token = client.token(PC_SCOPE)
    assert client.pc("GET", "/customers", token=token).status_code == 200
    client.advance(hours=2)
    response = client.pc("GET", "/customers", token=token)
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_wrong_audience_rejected(client):
    graph_token = client.token(GRAPH_SCOPE)
    assert client.pc("GET", "/customers", token=graph_token).status_code == 401
    assert client.pc("GET", "/customers", token=None, headers={"Authorization": ""}).json()["code"] == 800001


def test_app_user_refresh_token_flow_and_mfa(client):
    token = client.user_token(PC_SCOPE)
    assert client.pc("GET", "/fraudEvents", token=token).status_code == 200
    no_mfa = client.user_token(PC_SCOPE, mfa=False)
    response = client.pc("GET", "/fraudEvents", token=no_mfa)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_gdap_user_token_into_customer_tenant(client):
    token = client.user_token(GRAPH_SCOPE, tenant=FABRIKAM_ID)
    assert client.graph("GET", "/users?$top=1", token=token).status_code == 200
    rt = client.control("POST", "/refresh-tokens", json={}).json()["refresh_token"]
    result = client.msal_app(NORTHWIND_ID).acquire_token_by_refresh_token(rt, GRAPH_SCOPE)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [50020]
