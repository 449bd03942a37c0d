"""`make chaos`: faults under a stream of API writes; every accepted write completes exactly once.

Scenarios, each on a fresh stack (benchmarks/stack.py) with API clients assigning and removing
licenses and buying seats the whole time:

- ``worker-kill``: the Celery worker is killed (SIGKILL) mid-stream and a new one started;
- ``redis-outage``: Redis (broker and cache) stops for a while, then comes back;
- ``postgres-restart``: PostgreSQL restarts (fast shutdown) under the writes;
- ``throttling``: the emulator answers 30% of Microsoft calls with 429 and Retry-After.

After each: the outbox drains (nothing pending, running or dead), no MS-RequestId twice, no SKU
over-assigned, and the API never answered 500: while a dependency was away it answered 503 with
Retry-After, or the write was accepted (202) and then completed.

Usage: python -m benchmarks.chaos [--scenario NAME ...] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import requests

from benchmarks.load import check_invariants
from benchmarks.stack import Stack

SCENARIOS = ("worker-kill", "redis-outage", "postgres-restart", "throttling")


class Writers:
    """API clients writing until stopped; every answer's status is counted."""

    def __init__(self, stack: Stack, clients: int = 4):
        self.stack, self.clients = stack, clients
        self.statuses: Counter = Counter()
        self.examples: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(seed,), daemon=True) for seed in range(clients)]

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)

    def _count(self, status: int, what: str) -> None:
        with self.lock:
            self.statuses[status] += 1
            if status >= 500 and status != 503 and len(self.examples) < 10:
                self.examples.append(f"{status} {what}")

    def _run(self, seed: int) -> None:
        setup, rng = self.stack.setup, random.Random(seed)
        api = requests.Session()
        api.headers.update({"Authorization": f"Bearer {setup['api_key']}", "X-Organization": setup["org"]})
        base = self.stack.base_url
        while not self.stopping.is_set():
            if setup["offers"] and rng.random() < 0.1:
                method, path = "POST", "/api/v1/subscriptions/"
                body = {"offer_id": rng.choice(setup["offers"]), "quantity": 1}
            else:
                method, path = "POST", "/api/v1/license-assignments/"
                body = {"user": rng.choice(setup["directory_users"]), "sku": rng.choice(setup["skus"])}
            try:
                response = api.request(method, f"{base}{path}", json=body, timeout=30,
                                       headers={"Idempotency-Key": str(uuid.uuid4())})
            except requests.RequestException as exc:
                self._count(0, f"{path} {type(exc).__name__}")  # the server was unreachable: not an answer
                time.sleep(0.5)
                continue
            self._count(response.status_code, f"{method} {path} {response.text[:120]}")
            if response.status_code == 202 and path.endswith("license-assignments/") and rng.random() < 0.7:
                assignment = response.json().get("id")
                removed = api.delete(f"{base}{path}{assignment}/", timeout=30)
                self._count(removed.status_code, f"DELETE {path} {removed.text[:120]}")
            if response.status_code == 503:
                time.sleep(float(response.headers.get("Retry-After", "1")) / 5)


def inject(stack: Stack, name: str, seconds: float) -> None:
    """Apply one fault for about ``seconds`` and take it away again."""
    if name == "worker-kill":
        stack.stop("worker", signal.SIGKILL)
        time.sleep(seconds)
        stack.worker_start()
    elif name == "redis-outage":
        stack.redis_stop()
        time.sleep(seconds)
        stack.redis_start()
    elif name == "postgres-restart":
        stack.postgres_stop("fast")
        time.sleep(min(seconds, 2))
        stack.postgres_start()
    elif name == "throttling":
        for pattern, seed in (("/partnercenter/*", 7), ("/graph/*", 11)):
            stack.emulator_control("faults", {"pattern": pattern, "kind": "status", "status": 429,
                                              "retryAfter": 1, "rate": 0.3, "seed": seed})
        time.sleep(seconds)
        stack.emulator_control("faults", method="DELETE")


def run_faults(stack: Stack, scenarios: list[str], seconds: float) -> dict:
    """Writers the whole time; each fault in turn, with calm in between; then the invariants."""
    with Writers(stack) as writers:
        time.sleep(seconds / 3)
        for name in scenarios:
            inject(stack, name, seconds / 3)
            time.sleep(seconds / 3)
    invariants = check_invariants(stack, drain_seconds=240)
    statuses = dict(sorted(writers.statuses.items()))
    server_errors = sum(n for status, n in statuses.items() if status >= 500 and status != 503)
    ok = (server_errors == 0 and invariants["waiting"] == 0 and invariants["dead"] == 0
          and invariants["duplicate_request_ids"] == 0 and not invariants["over_assigned"])
    return {"scenarios": scenarios, "ok": ok, "statuses": statuses, "server_errors": server_errors,
            "examples": writers.examples, "invariants": invariants}


def run_scenario(name: str, seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"portal-chaos-{name}-") as workdir, \
            Stack(Path(workdir), members=1) as stack:
        return run_faults(stack, [name], seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args(argv)
    results = [run_scenario(name, args.seconds) for name in (args.scenario or SCENARIOS)]
    for result in results:
        print(json.dumps(result))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
