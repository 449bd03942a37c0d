"""The Microsoft emulator as a real HTTPS server in a thread, and a client configured for it.

The emulator starts once per session; every test that uses it gets a freshly reset and seeded
state, MS_* settings pointing at it, and a client whose sleeps are recorded instead of slept.
"""

from __future__ import annotations

import pytest
import requests

from licensing.microsoft.client import MicrosoftClient, reset_default_client
from licensing.microsoft.token_store import MemoryTokenStore

PARTNER_TENANT_ID = "8a1f4c2e-6b3d-4e7a-9c51-2d0f3b6a7e94"
CLIENT_ID = "5c2d8e1f-3a4b-4c6d-8e9f-0a1b2c3d4e5f"
CLIENT_SECRET = "test-only-client-secret-9f3b"


class EmulatorControl:
    """The emulator's /_emulator control API (not a Microsoft API)."""

    def __init__(self, handle):
        self.handle = handle
        self.base_url = handle.base_url
        self.ca_path = handle.ca_path
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = handle.ca_path

    def _url(self, path: str) -> str:
        return f"{self.base_url}/_emulator{path}"

    def reset(self) -> None:
        self.session.post(self._url("/reset"), json={}, timeout=60).raise_for_status()

    def info(self) -> dict:
        return self.session.get(self._url(""), timeout=10).json()

    def fault(self, pattern: str, **spec) -> dict:
        response = self.session.post(self._url("/faults"), json={"pattern": pattern, **spec}, timeout=10)
        response.raise_for_status()
        return response.json()

    def clear_faults(self) -> None:
        self.session.delete(self._url("/faults"), timeout=10).raise_for_status()

    def advance_clock(self, **delta) -> str:
        response = self.session.post(self._url("/clock"), json=delta, timeout=30)
        response.raise_for_status()
        return response.json()["now"]

    def requests_log(self, **filters) -> list[dict]:
        response = self.session.get(self._url("/requests"), params={"limit": 100000, **filters}, timeout=30)
        response.raise_for_status()
        return response.json()["requests"]

    def clear_requests_log(self) -> None:
        self.session.delete(self._url("/requests"), timeout=10).raise_for_status()

    def bulk_users(self, tenant_id: str, count: int) -> dict:
        response = self.session.post(self._url(f"/tenants/{tenant_id}/users"), json={"count": count}, timeout=120)
        response.raise_for_status()
        return response.json()

    def admin_agent_refresh_token(self, *, mfa: bool = True) -> str:
        response = self.session.post(self._url("/refresh-tokens"), json={"mfa": mfa}, timeout=10)
        response.raise_for_status()
        return response.json()["refresh_token"]

    def approve_gdap(self, relationship_id: str) -> dict:
        response = self.session.post(self._url(f"/gdap/{relationship_id}/approve"), timeout=10)
        response.raise_for_status()
        return response.json()

    def register_app_certificate(self, pem: str) -> dict:
        response = self.session.post(self._url("/app-certificates"), json={"certificate": pem}, timeout=10)
        response.raise_for_status()
        return response.json()

    def add_fraud_event(self, azure_subscription_id: str, *, event_type: str = "NetworkConnectionsToCryptoMiningPools",
                        status: str = "Active") -> dict:
        """Make Partner Center report a new Azure fraud event for an Azure subscription (an entitlement id)."""
        response = self.session.post(self._url("/fraud-events"), json={
            "subscriptionId": azure_subscription_id, "eventType": event_type, "eventStatus": status}, timeout=10)
        response.raise_for_status()
        return response.json()

    def update_settings(self, **changes) -> dict:
        response = self.session.patch(self._url("/settings"), json=changes, timeout=10)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="session")
def emulator_server(tmp_path_factory):
    from msemulator.config import PartnerConfig
    from msemulator.server import start_in_thread

    state = tmp_path_factory.mktemp("msemulator") / "state.sqlite3"
    handle = start_in_thread(
        port=0, state_path=str(state), tls=True, partner=PartnerConfig(PARTNER_TENANT_ID, CLIENT_ID, CLIENT_SECRET)
    )
    yield handle
    handle.stop()


@pytest.fixture
def emulator(emulator_server, settings):
    """A reset emulator and MS_* settings pointing at it (configuration is the only switch)."""
    control = EmulatorControl(emulator_server)
    control.reset()
    # Most tests read a purchase straight after carrying its operation out inline, so Microsoft
    # provisions at once here; tests of asynchronous provisioning (the emulator's default) set
    # their own delays and move the emulator clock.
    control.update_settings(orderProvisioningSeconds=0, orderProvisioningTailSeconds=0)
    settings.MS_AUTHORITY_HOST = control.base_url
    settings.MS_PARTNER_CENTER_URL = f"{control.base_url}/partnercenter"
    settings.MS_GRAPH_URL = f"{control.base_url}/graph"
    settings.MS_CA_BUNDLE = control.ca_path
    settings.MS_PARTNER_TENANT_ID = PARTNER_TENANT_ID
    settings.MS_CLIENT_ID = CLIENT_ID
    settings.MS_CLIENT_SECRET = CLIENT_SECRET
    settings.MS_HTTP_TIMEOUT = 10
    settings.MS_RETRY_BUDGET = 6
    reset_default_client()
    yield control
    reset_default_client()


class SleepRecorder(list):
    """Injected in place of time.sleep: remembers each requested delay, returns at once."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return SleepRecorder()


@pytest.fixture
def make_client(emulator, sleeps):
    """Build a client from the current settings (call again after moving the emulator clock:
    tokens are stamped in emulator time)."""

    def make(**kwargs) -> MicrosoftClient:
        kwargs.setdefault("store", MemoryTokenStore())
        kwargs.setdefault("sleep", sleeps)
        return MicrosoftClient.for_settings(**kwargs)

    return make


@pytest.fixture
def ms(make_client) -> MicrosoftClient:
    return make_client()


@pytest.fixture(autouse=True)
def _assignment_tallies_agree_after_each_test(request):
    """Whatever a licensing test wrote through whichever service, the tallies the pages read (decision 038)
    still equal a recount of the assignments when it ends."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    from django.db import connection
    from django.db.models import Count

    from licensing.models import AssignmentTally, LicenseAssignment

    if connection.needs_rollback or not connection.is_usable():
        return
    counted = {(r["sku_id"], r["state"]): r["n"] for r in LicenseAssignment._base_manager.order_by()
               .values("sku_id", "state").annotate(n=Count("pk"))}
    tallied = {(t.sku_id, state): n for t in AssignmentTally._base_manager.all()
               for state, n in t.counts().items() if n}
    assert tallied == counted, "assignment tallies drifted from the assignments (decision 038)"
