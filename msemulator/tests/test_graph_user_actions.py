"""Contract tests for the user actions an admin does weekly: create, reset a password, block and
unblock sign-in, revoke sessions. Request and error shapes as Microsoft documents them
(learn.microsoft.com/graph/api/user-post-users, user-update, user-revokesigninsessions)."""

import json

from msemulator.seed import FABRIKAM_ID

from .test_graph import fabrikam

DOMAIN = "fabrikamdemo.onmicrosoft.com"
STRONG = "Kq7!vRm2xTw9"


def new_user(**overrides) -> dict:
    body = {"accountEnabled": True, "displayName": "Ada Lovelace", "mailNickname": "ada.lovelace",
            "userPrincipalName": f"ada.lovelace@{DOMAIN}", "usageLocation": "GB",
            "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": STRONG}}
    return {**body, **overrides}


def check(client, user_key: str, password: str) -> dict:
    response = client.control("POST", f"/tenants/{FABRIKAM_ID}/users/{user_key}/password-check",
                              json={"password": password})
    assert response.status_code == 200, response.text
    return response.json()


def assert_graph_error(response, status: int, code: str, message_start: str = "") -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"].startswith(message_start)
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])
    return error


def test_create_user_returns_201_with_location_and_never_the_password(client):
    created = fabrikam(client, "POST", "/users", json=new_user())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["@odata.context"].endswith("$metadata#users/$entity")
    assert body["userPrincipalName"] == f"ada.lovelace@{DOMAIN}" and body["displayName"] == "Ada Lovelace"
    assert created.headers["Location"].endswith(f"/users/{body['id']}")
    assert STRONG not in created.text and "_password" not in created.text
    got = fabrikam(client, "GET", f"/users/{body['id']}?$select=accountEnabled,usageLocation,passwordProfile,"
                                  "_password,lastPasswordChangeDateTime").json()
    assert got["accountEnabled"] is True and got["usageLocation"] == "GB"
    assert got["passwordProfile"] is None and "_password" not in got and got["lastPasswordChangeDateTime"]
    state = check(client, body["id"], STRONG)
    assert state["matches"] and state["forceChangePasswordNextSignIn"] and state["accountEnabled"]
    assert check(client, body["id"], "wrong")["matches"] is False


def test_upn_in_use_is_400_with_object_conflict_details(client):
    assert fabrikam(client, "POST", "/users", json=new_user()).status_code == 201
    again = fabrikam(client, "POST", "/users", json=new_user(userPrincipalName=f"ADA.LOVELACE@{DOMAIN}"))
    error = assert_graph_error(again, 400, "Request_BadRequest",
                               "Another object with the same value for property userPrincipalName already exists.")
    assert error["details"][0]["code"] == "ObjectConflict" and error["details"][0]["target"] == "userPrincipalName"


def test_create_validates_required_properties_password_and_names(client):
    for missing in ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"):
        body = new_user()
        del body[missing]
        assert_graph_error(fabrikam(client, "POST", "/users", json=body), 400, "Request_BadRequest",
                           f"Property '{missing}' is required")
    for weak in ("short1A", "alllowercaseletters", "ALLUPPER12345", "a" * 300):
        response = fabrikam(client, "POST", "/users", json=new_user(passwordProfile={"password": weak}))
        assert_graph_error(response, 400, "Request_BadRequest", "The specified password does not comply")
    for bad in ({"userPrincipalName": f"has space@{DOMAIN}"}, {"mailNickname": "a b"},
                {"mailNickname": "x@y"}, {"usageLocation": "gb"}, {"accountEnabled": "yes"},
                {"passwordProfile": {"password": STRONG, "unknown": 1}}):
        assert_graph_error(fabrikam(client, "POST", "/users", json=new_user(**bad)), 400, "Request_BadRequest",
                           "Invalid value specified for property")
    assert fabrikam(client, "POST", "/users", json=new_user()).status_code == 201


def test_reset_password_through_password_profile(client):
    user = fabrikam(client, "POST", "/users", json=new_user()).json()
    patched = fabrikam(client, "PATCH", f"/users/{user['id']}",
                       json={"passwordProfile": {"forceChangePasswordNextSignIn": True, "password": "Zx9#pLm4Qw2e"}})
    assert patched.status_code == 204 and patched.content == b""
    assert check(client, user["id"], "Zx9#pLm4Qw2e")["matches"] is True
    assert check(client, user["id"], STRONG)["matches"] is False
    weak = fabrikam(client, "PATCH", f"/users/{user['id']}", json={"passwordProfile": {"password": "password"}})
    assert_graph_error(weak, 400, "Request_BadRequest", "The specified password does not comply")
    assert check(client, user["id"], "Zx9#pLm4Qw2e")["matches"] is True
    missing = fabrikam(client, "PATCH", "/users/00000000-0000-4000-8000-000000000000",
                       json={"passwordProfile": {"password": "Zx9#pLm4Qw2e"}})
    assert_graph_error(missing, 404, "Request_ResourceNotFound", "Resource '00000000-0000-4000-8000-000000000000'")


def test_block_and_unblock_sign_in_and_revoke_sessions(client):
    user = fabrikam(client, "POST", "/users", json=new_user()).json()
    assert fabrikam(client, "PATCH", f"/users/{user['id']}", json={"accountEnabled": False}).status_code == 204
    listed = fabrikam(client, "GET", f"/users?$filter=accountEnabled eq false and userPrincipalName eq "
                                     f"'{user['userPrincipalName']}'&$select=id,accountEnabled").json()["value"]
    assert listed == [{"id": user["id"], "accountEnabled": False}]
    assert_graph_error(fabrikam(client, "PATCH", f"/users/{user['id']}", json={"accountEnabled": "no"}), 400,
                       "Request_BadRequest", "Invalid value specified for property 'accountEnabled'")
    before = check(client, user["id"], STRONG)["signInSessionsValidFromDateTime"]
    client.advance(seconds=30)
    revoked = fabrikam(client, "POST", f"/users/{user['id']}/revokeSignInSessions")
    assert revoked.status_code == 200
    assert revoked.json()["value"] is True and revoked.json()["@odata.context"].endswith("$metadata#Edm.Boolean")
    state = check(client, user["id"], STRONG)
    assert state["accountEnabled"] is False and state["signInSessionsValidFromDateTime"] > before
    assert fabrikam(client, "PATCH", f"/users/{user['id']}", json={"accountEnabled": True}).status_code == 204
    assert check(client, user["id"], STRONG)["accountEnabled"] is True
    assert_graph_error(fabrikam(client, "POST", "/users/nobody@x.com/revokeSignInSessions"), 404,
                       "Request_ResourceNotFound")


def test_request_log_never_keeps_a_password(client):
    client.control("DELETE", "/requests")
    fabrikam(client, "POST", "/users", json=new_user())
    fabrikam(client, "PATCH", f"/users/ada.lovelace@{DOMAIN}", json={"passwordProfile": {"password": "Zx9#pLm4Qw2e"}})
    logged = client.control("GET", "/requests", params={"limit": 100}).json()["requests"]
    text = json.dumps(logged)
    assert "ada.lovelace" in text
    assert STRONG not in text and "Zx9#pLm4Qw2e" not in text
