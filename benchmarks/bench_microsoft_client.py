"""Microsoft client overhead against bare `requests` calls to the same emulator routes.

The emulator runs in a thread over HTTPS. The baseline sends the same request with a plain
`requests.Session` and a token fetched once; the figure goes through `MicrosoftClient` (msal cache
lookup, retry wrapper, ids, structured logging, typed parsing). A second pair pages through
10,000 directory users: the client's streaming iterator against a bare nextLink loop.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time

import requests
from django.test import override_settings

from benchmarks.harness import Context, Result

CALLS = 200
USERS = 10_000
PARTNER = ("8a1f4c2e-6b3d-4e7a-9c51-2d0f3b6a7e94", "5c2d8e1f-3a4b-4c6d-8e9f-0a1b2c3d4e5f", "bench-only-secret")


def _per_call(func, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        func()
    return (time.perf_counter() - start) / calls


def run(ctx: Context) -> list[Result]:
    from licensing.microsoft.auth import GRAPH_SCOPE, PC_SCOPE
    from licensing.microsoft.client import MicrosoftClient
    from licensing.microsoft.token_store import MemoryTokenStore
    from msemulator.config import PartnerConfig
    from msemulator.server import start_in_thread

    workdir = tempfile.mkdtemp(prefix="bench-msemulator-")
    handle = start_in_thread(port=0, state_path=f"{workdir}/state.sqlite3", tls=True, partner=PartnerConfig(*PARTNER))
    base = handle.base_url
    handle.app.throttling.configure({"enabled": False})  # the client's speed, not Microsoft's policy
    overrides = {
        "MS_AUTHORITY_HOST": base,
        "MS_PARTNER_CENTER_URL": f"{base}/partnercenter",
        "MS_GRAPH_URL": f"{base}/graph",
        "MS_CA_BUNDLE": handle.ca_path,
        "MS_PARTNER_TENANT_ID": PARTNER[0],
        "MS_CLIENT_ID": PARTNER[1],
        "MS_CLIENT_SECRET": PARTNER[2],
    }
    quiet = ("werkzeug", "licensing.microsoft.http", "msal", "urllib3")
    levels = {name: logging.getLogger(name).level for name in quiet}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with override_settings(**overrides):
            client = MicrosoftClient.for_settings(store=MemoryTokenStore())
            bare = requests.Session()
            bare.trust_env = False
            bare.verify = handle.ca_path
            pc_token = client.tokens.app_token(tenant_id=PARTNER[0], scope=PC_SCOPE)
            url = f"{base}/partnercenter/v1/products/CFQ7TTC0LH18/skus/0001"

            def bare_call():
                r = bare.get(url, params={"country": "US"}, headers={"Authorization": f"Bearer {pc_token}"}, timeout=15)
                r.raise_for_status()
                return r.json()

            def client_call():
                return client.partner_center.get_sku(product_id="CFQ7TTC0LH18", sku_id="0001", country="US")

            bare_call(), client_call()
            figures, baselines = [], []
            for _ in range(5):
                baselines.append(_per_call(bare_call, CALLS // 5))
                figures.append(_per_call(client_call, CALLS // 5))
            call_figure, call_base = statistics.median(figures) * 1e3, statistics.median(baselines) * 1e3
            ctx.say(f"per call: client {call_figure:.2f} ms, bare requests {call_base:.2f} ms")

            tenant = next(client.partner_center.iter_customers()).id
            control = requests.Session()
            control.trust_env = False
            control.verify = handle.ca_path
            seeded = control.post(f"{base}/_emulator/tenants/{tenant}/users", json={"count": USERS}, timeout=300)
            seeded.raise_for_status()
            graph_token = client.tokens.app_token(tenant_id=tenant, scope=GRAPH_SCOPE)

            def bare_pages() -> int:
                count, link = 0, f"{base}/graph/v1.0/users?$top=999&$select=id,displayName,userPrincipalName"
                while link:
                    body = bare.get(link, headers={"Authorization": f"Bearer {graph_token}"}, timeout=60).json()
                    count += len(body["value"])
                    link = body.get("@odata.nextLink")
                return count

            def client_pages() -> int:
                select = ("id", "displayName", "userPrincipalName")
                return sum(1 for _ in client.graph.iter_users(tenant_id=tenant, select=select, top=999))

            bare_times, client_times = [], []
            for _ in range(3):  # interleaved, so drift affects both sides alike
                start = time.perf_counter()
                bare_count = bare_pages()
                bare_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                client_count = client_pages()
                client_times.append(time.perf_counter() - start)
            page_figure, page_base = min(client_times), min(bare_times)
            assert client_count == bare_count >= USERS
            ctx.say(f"{client_count} users: client {page_figure:.2f} s, bare {page_base:.2f} s")
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        handle.stop()
    return [
        Result("Microsoft client call (PC get SKU)", call_figure, call_base, "ms", goal=1.25,
               note="MicrosoftClient vs bare requests.get to the same emulator route, token reused"),
        Result(f"page through {USERS:,} Graph users", page_figure, page_base, "s", goal=1.3,
               note="streaming iterator with typed users vs a bare nextLink loop"),
    ]
