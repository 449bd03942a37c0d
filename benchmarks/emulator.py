"""The Microsoft emulator for the benchmarks: a separate process (or a thread), its control API, portal settings.

A subprocess is the default: the emulator then has its own interpreter and GIL, as it does next to a
real portal, and neither its CPU time nor its memory is counted against the code being measured.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

PARTNER_TENANT_ID = "8a1f4c2e-6b3d-4e7a-9c51-2d0f3b6a7e94"
CLIENT_ID = "5c2d8e1f-3a4b-4c6d-8e9f-0a1b2c3d4e5f"
CLIENT_SECRET = "bench-only-secret"
# The emulator's seeded demo customer (300 users, Business Premium and Exchange Online P1, app consented).
FABRIKAM = "3f2c7b1e-8d4a-4c6e-9b0f-1a2d3e4f5a6b"
FABRIKAM_DOMAIN = "fabrikamdemo.onmicrosoft.com"
BUSINESS_PREMIUM = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def scale() -> float:
    """BENCH_SCALE (default 1.0) multiplies the work sizes, for slower or faster machines."""
    return float(os.environ.get("BENCH_SCALE", "1") or 1)


def scaled(count: int, minimum: int = 1) -> int:
    return max(minimum, int(count * scale()))


def session(ca_path: str | None) -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    http.verify = ca_path or True
    return http


@dataclass
class Emulator:
    base_url: str
    ca_path: str
    stop: object

    def control(self) -> Control:
        return Control(self.base_url, self.ca_path)

    def portal_settings(self) -> dict:
        """MS_* settings pointing the portal's Microsoft client at this emulator."""
        return {
            "MS_AUTHORITY_HOST": self.base_url,
            "MS_PARTNER_CENTER_URL": f"{self.base_url}/partnercenter",
            "MS_GRAPH_URL": f"{self.base_url}/graph",
            "MS_CA_BUNDLE": self.ca_path,
            "MS_PARTNER_TENANT_ID": PARTNER_TENANT_ID,
            "MS_CLIENT_ID": CLIENT_ID,
            "MS_CLIENT_SECRET": CLIENT_SECRET,
            "MS_HTTP_TIMEOUT": 120,
        }


class Control:
    """The emulator's /_emulator control API and a few raw Microsoft calls used to set the scene."""

    def __init__(self, base_url: str, ca_path: str):
        self.base_url = base_url
        self.http = session(ca_path)

    def post(self, path: str, body: dict, timeout: float = 300) -> dict:
        response = self.http.post(f"{self.base_url}/_emulator{path}", json=body, timeout=timeout)
        response.raise_for_status()
        return response.json()

    def patch(self, path: str, body: dict) -> dict:
        response = self.http.patch(f"{self.base_url}/_emulator{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def add_users(self, tenant_id: str, count: int, seed: int = 1) -> int:
        """Bulk-create generated users; returns the tenant's total."""
        return self.post(f"/tenants/{tenant_id}/users", {"count": count, "seed": seed})["total"]

    def lift_sandbox_limits(self) -> None:
        # Orders complete at checkout: a benchmark times the portal, not the emulator's provisioning delay.
        self.patch("/settings", {"sandboxLimits": False, "orderProvisioningSeconds": 0,
                                 "orderProvisioningTailSeconds": 0})

    def without_throttling(self) -> None:
        """Turn Microsoft's modelled throttling off: for figures of the portal's or the emulator's own
        speed, which the throttle would turn into figures of Microsoft's policy (bench_bulk_throttled
        measures the job under it)."""
        self.patch("/throttling", {"enabled": False})

    def token(self, tenant_id: str, scope: str) -> str:
        response = self.http.post(
            f"{self.base_url}/{tenant_id}/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "scope": scope},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def pc(self, method: str, path: str, **kwargs) -> dict:
        token = self.token(PARTNER_TENANT_ID, "https://api.partnercenter.microsoft.com/.default")
        response = self.http.request(method, f"{self.base_url}/partnercenter/v1{path}", timeout=60,
                                     headers={"Authorization": f"Bearer {token}"}, **kwargs)
        response.raise_for_status()
        return response.json()

    def subscription(self, customer_id: str, offer_prefix: str) -> dict:
        """The customer's first active subscription whose offer id starts with ``offer_prefix``."""
        items = self.pc("GET", f"/customers/{customer_id}/subscriptions")["items"]
        return next(s for s in items if s["offerId"].startswith(offer_prefix) and s["status"] == "active")

    def set_quantity(self, customer_id: str, subscription: dict, quantity: int) -> dict:
        body = {**subscription, "quantity": quantity}
        return self.pc("PATCH", f"/customers/{customer_id}/subscriptions/{subscription['id']}", json=body)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def emulator_process() -> Iterator[Emulator]:
    """``python -m msemulator`` on a free port with a fresh state, stopped on exit."""
    workdir = tempfile.mkdtemp(prefix="bench-msemulator-")
    port = _free_port()
    env = {**os.environ, "MSEMULATOR_PARTNER_TENANT_ID": PARTNER_TENANT_ID, "MSEMULATOR_CLIENT_ID": CLIENT_ID,
           "MSEMULATOR_CLIENT_SECRET": CLIENT_SECRET}
    env.pop("MSEMULATOR_CONTROL_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "msemulator", "--host", "127.0.0.1", "--port", str(port),
         "--state", f"{workdir}/state.sqlite3"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    emulator = Emulator(f"https://127.0.0.1:{port}", f"{workdir}/msemulator-ca.pem", process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"msemulator exited with status {process.returncode}")
            try:
                if os.path.exists(emulator.ca_path):
                    session(emulator.ca_path).get(f"{emulator.base_url}/_emulator", timeout=5).raise_for_status()
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("msemulator did not start within 60 s")
            time.sleep(0.1)
        yield emulator
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def emulator_thread() -> Iterator[Emulator]:
    """The emulator in a thread of this process (as the test suite runs it): it shares the GIL with the caller."""
    from msemulator.config import PartnerConfig
    from msemulator.server import start_in_thread

    workdir = tempfile.mkdtemp(prefix="bench-msemulator-")
    handle = start_in_thread(port=0, state_path=f"{workdir}/state.sqlite3", tls=True,
                             partner=PartnerConfig(PARTNER_TENANT_ID, CLIENT_ID, CLIENT_SECRET))
    try:
        yield Emulator(handle.base_url, handle.ca_path, handle)
    finally:
        handle.stop()


@contextlib.contextmanager
def quiet_logs(*names: str) -> Iterator[None]:
    import logging

    names = names or ("werkzeug", "licensing.microsoft.http", "msal", "urllib3", "licensing.provisioning")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def worker_heap() -> Iterator[None]:
    """The process's heap as a Celery worker process (``portal.celery.freeze_startup_heap``, run on
    ``worker_process_init``) or a web worker (gunicorn.conf.py) has it once started: start-up's objects frozen
    out of the cyclic collector's scans. The benchmarks run tasks eagerly and requests through the test client
    in this process, so they put it in that state, for the baseline as for the portal, and thaw it afterwards
    for the benchmarks that follow."""
    import gc

    from portal.celery import freeze_startup_heap

    freeze_startup_heap()
    try:
        yield
    finally:
        gc.unfreeze()


def buy(control: Control, customer_id: str, product_id: str, quantity: int) -> str:
    """Buy ``quantity`` seats (P1Y, monthly) of the product's first SKU; returns the order id.

    The scene is set with instant provisioning (the emulator provisions asynchronously by default,
    decision 020): the benchmarks measure what comes after the purchase."""
    control.patch("/settings", {"orderProvisioningSeconds": 0, "orderProvisioningTailSeconds": 0})
    availability = control.pc("GET", f"/products/{product_id}/skus/0001/availabilities", params={"country": "US"})
    item = availability["items"][0]["catalogItemId"]
    cart = control.pc("POST", f"/customers/{customer_id}/carts", json={"lineItems": [{
        "id": 0, "catalogItemId": item, "quantity": quantity, "termDuration": "P1Y", "billingCycle": "monthly",
    }]})
    order = control.pc("POST", f"/customers/{customer_id}/carts/{cart['id']}/checkout")
    return order["orders"][0]["id"]


@contextlib.contextmanager
def portal_pointed_at(emulator: Emulator) -> Iterator[None]:
    """The portal's MS_* settings and default Microsoft client aimed at ``emulator``."""
    from django.core.cache import cache
    from django.test import override_settings

    from licensing.microsoft.client import reset_default_client
    from licensing.microsoft.token_store import DjangoCacheTokenStore
    from licensing.models import MicrosoftTokenCache

    def forget_tokens():
        # Each emulator signs tokens with its own key: tokens cached from another one would be refused.
        # Both stores: the database row, and Redis when REDIS_URL is set.
        MicrosoftTokenCache.objects.all().delete()
        cache.delete(DjangoCacheTokenStore().key)

    with override_settings(**emulator.portal_settings()):
        forget_tokens()
        reset_default_client()
        try:
            yield
        finally:
            reset_default_client()
            forget_tokens()


def linked_organization(slug: str, tenant_id: str = FABRIKAM, domain: str = FABRIKAM_DOMAIN):
    """A fresh organisation linked to the emulator tenant (a tenant links to one organisation only)."""
    import uuid as uuid_module

    from accounts.models import TENANT_ID_INDEX, MicrosoftTenant, Organization
    from core.crypto import blind_index
    from core.tenancy import tenant_context, unscoped_no_tenant

    with unscoped_no_tenant():
        MicrosoftTenant.unscoped_objects.filter(tenant_id_index=blind_index(TENANT_ID_INDEX, str(tenant_id))).update(
            tenant_id=None, tenant_id_index=None
        )
    organization = Organization.objects.create(slug=slug, legal_name=slug, country="US")
    with tenant_context(organization):
        MicrosoftTenant.objects.create(
            organization=organization, tenant_id=uuid_module.UUID(tenant_id), primary_domain=domain,
            relationship_status=MicrosoftTenant.RelationshipStatus.ACTIVE,
        )
    return organization


def sync_directory(organization):
    """Request a directory sync; eager Celery runs it on commit. Returns the finished run."""
    import licensing.tasks_directory  # noqa: F401 - registers the task the service enqueues by name
    from core.audit import Actor
    from core.tenancy import tenant_context
    from licensing.models import DirectorySync
    from licensing.services import directory as directory_services

    with tenant_context(organization):
        sync = directory_services.directory_sync_request(organization=organization, actor=Actor.system("bench"))
    with tenant_context(organization):
        sync = DirectorySync.objects.for_org(organization).get(pk=sync.pk)
    assert sync.status == DirectorySync.Status.SUCCEEDED, (sync.status, sync.error_code, sync.error_message)
    return sync
