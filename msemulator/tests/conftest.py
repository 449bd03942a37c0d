"""Start the emulator over HTTPS on a free port with a temporary state file. No Django, no DB."""

import msal
import pytest
import requests

from msemulator.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PARTNER_TENANT_ID
from msemulator.server import start_in_thread

PC_SCOPE = ["https://api.partnercenter.microsoft.com/.default"]
GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
pytestmark = pytest.mark.emulator


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    handle = start_in_thread(port=0, state_path=str(tmp_path_factory.mktemp("msemulator") / "state.sqlite3"))
    yield handle
    handle.stop()


class Client:
    """Thin test client: TLS verified against the emulator CA, proxies and env CA bundles ignored."""

    def __init__(self, handle):
        self.base = handle.base_url
        self.ca = handle.ca_path
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = handle.ca_path

    def msal_app(self, tenant=DEFAULT_PARTNER_TENANT_ID, secret=DEFAULT_CLIENT_SECRET,
                 client_id=DEFAULT_CLIENT_ID):
        return msal.ConfidentialClientApplication(client_id, client_credential=secret,
                                                  authority=f"{self.base}/{tenant}",
                                                  instance_discovery=False, http_client=self.http)

    def token(self, scopes, tenant=DEFAULT_PARTNER_TENANT_ID) -> str:
        result = self.msal_app(tenant).acquire_token_for_client(scopes)
        assert "access_token" in result, result
        return result["access_token"]

    def user_token(self, scopes, tenant=DEFAULT_PARTNER_TENANT_ID, mfa=True) -> str:
        rt = self.control("POST", "/refresh-tokens", json={"mfa": mfa}).json()["refresh_token"]
        result = self.msal_app(tenant).acquire_token_by_refresh_token(rt, scopes)
        assert "access_token" in result, result
        return result["access_token"]

    def pc(self, method, path, token=None, headers=None, **kwargs):
        token = token or self.token(PC_SCOPE)
        return self.http.request(method, f"{self.base}/partnercenter/v1{path}",
                                 headers={"Authorization": f"Bearer {token}", **(headers or {})}, **kwargs)

    def graph(self, method, path, tenant=DEFAULT_PARTNER_TENANT_ID, token=None, headers=None, **kwargs):
        token = token or self.token(GRAPH_SCOPE, tenant)
        url = path if path.startswith("https://") else f"{self.base}/graph/v1.0{path}"
        return self.http.request(method, url, headers={"Authorization": f"Bearer {token}", **(headers or {})},
                                 **kwargs)

    def control(self, method, path, **kwargs):
        return self.http.request(method, f"{self.base}/_emulator{path}", **kwargs)

    def advance(self, **delta):
        return self.control("POST", "/clock", json=delta).json()


@pytest.fixture
def client(emulator):
    c = Client(emulator)
    assert c.control("POST", "/reset").status_code == 200
    # Contract tests read orders straight after checkout; asynchronous provisioning (the default)
    # has its own tests, which set the delays they need.
    c.control("PATCH", "/settings", json={"orderProvisioningSeconds": 0, "orderProvisioningTailSeconds": 0})
    return c


def assert_pc_collection(body):
    assert set(body) >= {"totalCount", "items", "links", "attributes"}
    assert body["attributes"]["objectType"] == "Collection"
    assert isinstance(body["items"], list) and body["totalCount"] == len(body["items"])
    assert body["links"]["self"]["method"] == "GET"


def assert_pc_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and isinstance(body["description"], str)
    assert {"data", "source"} <= set(body)
