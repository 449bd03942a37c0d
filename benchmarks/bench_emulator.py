"""Emulator throughput on a mixed read/write route set against a trivial route on the same server.

N client threads, each with its own `requests.Session`, run rounds of the calls the portal makes:
a client-credentials token, Graph subscribedSkus, a page of 100 users, a Partner Center subscription
GET and quantity PATCH, one assignLicense and a $batch of 20 assignLicense (each thread toggles its
own users, so the writes never collide). The baseline is `GET /_emulator` from the same threads.

The emulator runs as a subprocess (its own GIL, like next to a real portal); the same load against
the emulator in a thread of this process (as the test suite runs it) is reported next to it.
Each thread's session keeps its connection alive (cheroot); bench_keepalive measures what that saves.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
import uuid
from collections.abc import Callable

from benchmarks.emulator import (
    BUSINESS_PREMIUM,
    CLIENT_ID,
    CLIENT_SECRET,
    FABRIKAM,
    PARTNER_TENANT_ID,
    Emulator,
    emulator_process,
    emulator_thread,
    quiet_logs,
    scaled,
    session,
)
from benchmarks.harness import Context, Result

THREADS = 4
ROUNDS = 12  # per thread, 7 requests a round
BATCH = 20
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
PC_SCOPE = "https://api.partnercenter.microsoft.com/.default"
BASE_SEATS = 250  # Business Premium allows at most 300


def _prepare(emulator: Emulator) -> dict:
    control = emulator.control()
    control.lift_sandbox_limits()
    control.without_throttling()
    premium = control.subscription(FABRIKAM, "CFQ7TTC0LCHC")
    control.set_quantity(FABRIKAM, premium, BASE_SEATS)
    graph_token = control.token(FABRIKAM, GRAPH_SCOPE)
    users, link = [], f"{emulator.base_url}/graph/v1.0/users?$top=999&$select=id,usageLocation,accountEnabled"
    http = session(emulator.ca_path)
    while link:
        body = http.get(link, headers={"Authorization": f"Bearer {graph_token}"}, timeout=60).json()
        users += [u["id"] for u in body["value"] if u.get("usageLocation")]
        link = body.get("@odata.nextLink")
    return {"subscription": control.subscription(FABRIKAM, "CFQ7TTC0LCHC"), "users": users}


def _mixed_round(emulator: Emulator, http, scene: dict, index: int) -> list[Callable[[int], object]]:
    """The seven calls of one round for thread ``index``; each takes the round number."""
    base = emulator.base_url
    sub = scene["subscription"]
    own = scene["users"][index * (BATCH + 1):(index + 1) * (BATCH + 1)]
    tokens: dict[str, str] = {}

    def fetch_token(tenant: str, scope: str, key: str):
        response = http.post(f"{base}/{tenant}/oauth2/v2.0/token", timeout=60, data={
            "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "scope": scope})
        response.raise_for_status()
        tokens[key] = response.json()["access_token"]
        return response

    fetch_token(PARTNER_TENANT_ID, PC_SCOPE, "pc")

    def token(_round: int):
        return fetch_token(FABRIKAM, GRAPH_SCOPE, "graph")

    def auth(key: str) -> dict:
        return {"Authorization": f"Bearer {tokens[key]}"}

    def change(add: bool, user_ids: list[str]) -> list[dict]:
        body = ({"addLicenses": [{"skuId": BUSINESS_PREMIUM, "disabledPlans": []}], "removeLicenses": []} if add
                else {"addLicenses": [], "removeLicenses": [BUSINESS_PREMIUM]})
        return [{"id": str(n), "method": "POST", "url": f"/users/{uid}/assignLicense",
                 "headers": {"Content-Type": "application/json"}, "body": body} for n, uid in enumerate(user_ids)]

    def call(method: str, url: str, key: str, **kwargs):
        def send(_round: int):
            response = http.request(method, f"{base}{url}", headers=auth(key), timeout=60, **kwargs)
            response.raise_for_status()
            return response
        return send

    def patch_quantity(round_number: int):
        body = {**sub, "quantity": BASE_SEATS + 1 + index + round_number % 2}
        headers = {**auth("pc"), "MS-RequestId": str(uuid.uuid4())}
        response = http.patch(f"{base}/partnercenter/v1/customers/{FABRIKAM}/subscriptions/{sub['id']}",
                              json=body, headers=headers, timeout=60)
        response.raise_for_status()
        return response

    def assign_one(round_number: int):
        return call("POST", f"/graph/v1.0/users/{own[0]}/assignLicense", "graph",
                    json=change(round_number % 2 == 0, own[:1])[0]["body"])(round_number)

    def assign_batch(round_number: int):
        response = call("POST", "/graph/v1.0/$batch", "graph",
                        json={"requests": change(round_number % 2 == 0, own[1:])})(round_number)
        statuses = {item["status"] for item in response.json()["responses"]}
        assert statuses == {200}, statuses
        return response

    return [
        token,
        call("GET", "/graph/v1.0/subscribedSkus", "graph"),
        call("GET", "/graph/v1.0/users?$top=100&$select=id,displayName,userPrincipalName", "graph"),
        call("GET", f"/partnercenter/v1/customers/{FABRIKAM}/subscriptions/{sub['id']}", "pc"),
        patch_quantity,
        assign_one,
        assign_batch,
    ]


def _trivial_round(emulator: Emulator, http, scene: dict, index: int) -> list[Callable[[int], object]]:
    def info(_round: int):
        response = http.get(f"{emulator.base_url}/_emulator", timeout=60)
        response.raise_for_status()
        return response

    return [info] * 7


def _load(emulator: Emulator, scene: dict, make_round, rounds: int) -> tuple[float, list[float]]:
    """Run ``rounds`` rounds on each of THREADS threads; (requests/s, per-request latencies in ms)."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start_line = threading.Barrier(THREADS + 1)

    def worker(index: int) -> None:
        http = session(emulator.ca_path)
        mine = []
        try:
            calls = make_round(emulator, http, scene, index)
            calls[0](0)  # warm-up: the first token, outside the clock
            start_line.wait(timeout=120)
            for round_number in range(rounds):
                for call in calls:
                    began = time.perf_counter()
                    call(round_number)
                    mine.append((time.perf_counter() - began) * 1e3)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
            start_line.abort()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a worker failed: its error is raised below
        start_line.wait(timeout=120)
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return len(latencies) / elapsed, latencies


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(latencies, n=20)
    return statistics.median(latencies), cuts[18]


def _measure(emulator: Emulator, rounds: int) -> dict:
    scene = _prepare(emulator)
    mixed_rps, trivial_rps, mixed_lat, trivial_lat = [], [], [], []
    for _ in range(2):  # interleaved, so drift affects both alike
        rps, lat = _load(emulator, scene, _trivial_round, rounds)
        trivial_rps.append(rps)
        trivial_lat += lat
        rps, lat = _load(emulator, scene, _mixed_round, rounds)
        mixed_rps.append(rps)
        mixed_lat += lat
    return {"mixed": max(mixed_rps), "trivial": max(trivial_rps), "mixed_p": _percentiles(mixed_lat),
            "trivial_p": _percentiles(trivial_lat)}


def run(ctx: Context) -> list[Result]:
    rounds = scaled(ROUNDS, minimum=2)
    with quiet_logs():
        with emulator_process() as emulator:
            sub = _measure(emulator, rounds)
        with emulator_thread() as emulator:
            inproc = _measure(emulator, rounds)
    for label, m in (("subprocess", sub), ("in-thread", inproc)):
        ctx.say(f"{label}: mixed {m['mixed']:.0f} req/s (p50 {m['mixed_p'][0]:.1f} ms, p95 {m['mixed_p'][1]:.1f} ms);"
                f" GET /_emulator {m['trivial']:.0f} req/s (p50 {m['trivial_p'][0]:.1f} ms,"
                f" p95 {m['trivial_p'][1]:.1f} ms)")
    ctx.say(f"{THREADS} threads x {rounds} rounds x 7 requests; a $batch carries {BATCH} assignLicense, so the"
            f" emulator applies about {sub['mixed'] / 7 * BATCH:.0f} batched license changes/s inside this mix")
    mixed_note = (f"{THREADS} threads, HTTPS, emulator subprocess; p50 {sub['mixed_p'][0]:.1f} ms,"
                  f" p95 {sub['mixed_p'][1]:.1f} ms (baseline p50 {sub['trivial_p'][0]:.1f} ms,"
                  f" p95 {sub['trivial_p'][1]:.1f} ms); baseline: GET /_emulator")
    return [
        Result("emulator mixed routes (req/s)", sub["mixed"], sub["trivial"], "req/s", higher_is_better=True,
               note=mixed_note),
        Result("emulator mixed routes, in-thread (req/s)", inproc["mixed"], sub["mixed"], "req/s",
               higher_is_better=True,
               note=f"the same load against the emulator in a thread of the load generator (p50"
                    f" {inproc['mixed_p'][0]:.1f} ms, p95 {inproc['mixed_p'][1]:.1f} ms); baseline: subprocess"),
    ]
