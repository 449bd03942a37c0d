import base64
import time

import jwt
import msal

from msemulator.config import DEFAULT_CLIENT_ID, DEFAULT_PARTNER_TENANT_ID
from msemulator.seed import FABRIKAM_ID, NORTHWIND_ID

from .certs import app_certificate
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


def _cert_app(client, key_pem, thumbprint, tenant=DEFAULT_PARTNER_TENANT_ID):
    return msal.ConfidentialClientApplication(
        DEFAULT_CLIENT_ID, client_credential={"private_key": key_pem, "thumbprint": thumbprint},
        authority=f"{client.base}/{tenant}", instance_discovery=False, http_client=client.http)


def test_certificate_credentials_accepted_for_a_registered_certificate(client):
    cert_pem, key_pem, thumbprint = app_certificate()
    registered = client.control("POST", "/app-certificates", json={"certificate": cert_pem})
    assert registered.status_code == 201 and registered.json()["thumbprint"] == thumbprint
    assert "pem" not in client.control("GET", "/app-certificates").json()["certificates"][0]
    result = _cert_app(client, key_pem, thumbprint).acquire_token_for_client(PC_SCOPE)
    assert result.get("token_type") == "Bearer", result
    assert client.pc("GET", "/customers", token=result["access_token"]).status_code == 200
    graph = _cert_app(client, key_pem, thumbprint, tenant=FABRIKAM_ID).acquire_token_for_client(GRAPH_SCOPE)
    assert "access_token" in graph, graph


def test_certificate_credentials_rejected_with_aadsts_codes(client):
    cert_pem, key_pem, thumbprint = app_certificate()
    # Not registered on the app.
    unknown = _cert_app(client, key_pem, thumbprint).acquire_token_for_client(PC_SCOPE)
    assert unknown["error"] == "invalid_client" and unknown["error_codes"] == [700027]
    assert "not registered on application" in unknown["error_description"]
    # Signed with another key than the registered certificate's.
    client.control("POST", "/app-certificates", json={"certificate": cert_pem})
    _, other_key, _ = app_certificate()
    forged = _cert_app(client, other_key, thumbprint).acquire_token_for_client(PC_SCOPE)
    assert forged["error_codes"] == [700027] and "signature" in forged["error_description"]
    # The registered certificate has expired.
    old_pem, old_key, old_thumbprint = app_certificate(days_valid=30, expired=True)
    client.control("POST", "/app-certificates", json={"certificate": old_pem})
    expired = _cert_app(client, old_key, old_thumbprint).acquire_token_for_client(PC_SCOPE)
    assert expired["error_codes"] == [700027] and "expired" in expired["error_description"]
    # A registered, valid key, but the assertion itself is outside its time range once the clock moves on.
    # msal builds a fresh assertion per request, so craft one that expired an hour ago.
    stale = jwt.encode({"aud": f"{client.base}/{DEFAULT_PARTNER_TENANT_ID}/oauth2/v2.0/token",
                        "iss": DEFAULT_CLIENT_ID, "sub": DEFAULT_CLIENT_ID, "jti": "x",
                        "nbf": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, key_pem, algorithm="RS256",
                       headers={"x5t": _x5t(thumbprint)})
    response = client.http.post(f"{client.base}/{DEFAULT_PARTNER_TENANT_ID}/oauth2/v2.0/token", data={
        "client_id": DEFAULT_CLIENT_ID, "grant_type": "client_credentials", "scope": PC_SCOPE[0],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": stale})
    assert response.status_code == 401 and response.json()["error_codes"] == [700024]
    # A fresh assertion from the same key is fine again.
    assert "access_token" in _cert_app(client, key_pem, thumbprint).acquire_token_for_client(PC_SCOPE)


def _x5t(thumbprint_hex: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(thumbprint_hex)).rstrip(b"=").decode()
