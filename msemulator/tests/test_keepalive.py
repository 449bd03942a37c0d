"""The emulator keeps connections alive as Microsoft's front doors do, and can reset one that idled."""

import pytest
import requests

from msemulator.seed import FABRIKAM_ID

from .conftest import GRAPH_SCOPE


def pool_of(client):
    adapter = client.http.get_adapter(client.base)
    return adapter.poolmanager.connection_from_url(client.base)


def test_one_connection_serves_many_requests(client):
    token = client.token(GRAPH_SCOPE, FABRIKAM_ID)
    pool = pool_of(client)
    opened = pool.num_connections
    responses = [client.graph("GET", "/users?$top=5", tenant=FABRIKAM_ID, token=token) for _ in range(5)]
    assert all(r.status_code == 200 for r in responses)
    assert all(r.raw.version == 11 and "close" not in r.headers.get("Connection", "") for r in responses)
    assert pool.num_connections == opened  # the token call's connection carried all five


def test_idle_reset_resets_a_reused_connection_once_and_carries_nothing_out(client):
    token = client.token(GRAPH_SCOPE, FABRIKAM_ID)
    rule = client.control("POST", "/faults", json={"pattern": "/graph/v1.0/users", "method": "POST",
                                                   "kind": "idle_reset", "idleSeconds": 0}).json()
    assert rule["kind"] == "idle_reset" and rule["idleSeconds"] == 0 and rule["times"] == 1
    body = {"accountEnabled": True, "displayName": "Reset Once", "mailNickname": "reset.once",
            "userPrincipalName": "reset.once@fabrikamdemo.onmicrosoft.com",
            "passwordProfile": {"password": "Correct-Horse-9!", "forceChangePasswordNextSignIn": True}}
    with pytest.raises(requests.ConnectionError):
        client.graph("POST", "/users", tenant=FABRIKAM_ID, token=token, json=body)
    # Nothing of the reset request was carried out: the user does not exist and the log has no POST.
    lookup = client.graph("GET", "/users/reset.once@fabrikamdemo.onmicrosoft.com", tenant=FABRIKAM_ID, token=token)
    assert lookup.status_code == 404
    log = client.control("GET", "/requests", params={"method": "POST", "path": "/graph/v1.0/users"}).json()
    assert log["requests"] == []
    # The rule fired once; the next call on a new connection goes through.
    created = client.graph("POST", "/users", tenant=FABRIKAM_ID, token=token, json=body)
    assert created.status_code == 201, created.text


def test_idle_reset_spares_a_new_connection_and_a_connection_not_idle_long_enough(client):
    token = client.token(GRAPH_SCOPE, FABRIKAM_ID)
    client.control("POST", "/faults", json={"pattern": "/graph/v1.0/users", "kind": "idle_reset",
                                            "idleSeconds": 3600, "times": None})
    assert client.graph("GET", "/users", tenant=FABRIKAM_ID, token=token).status_code == 200
    fresh = requests.Session()
    fresh.trust_env, fresh.verify = False, client.ca
    response = fresh.get(f"{client.base}/graph/v1.0/users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert client.control("GET", "/faults").json()["faults"][0]["hits"] == 0


def test_many_idle_clients_do_not_cost_a_new_client_its_keep_alive(client):
    """Cheroot's default keeps 10 idle connections and closes the rest: a long test session or a load run
    with many clients would lose keep-alive without a word. The emulator keeps as many as a front door."""
    token = client.token(GRAPH_SCOPE, FABRIKAM_ID)
    idle, closed = [], []
    try:
        for number in range(25):
            session = requests.Session()
            session.trust_env, session.verify = False, client.ca
            response = session.get(f"{client.base}/graph/v1.0/users?$top=1",
                                   headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
            if "close" in response.headers.get("Connection", ""):
                closed.append(number)
            idle.append(session)  # each keeps its connection open and idle
        assert closed == []
    finally:
        for session in idle:
            session.close()
