"""`make load`: a day's mix against the whole stack, then the invariants that must hold after it.

The stack (benchmarks/stack.py) is gunicorn + PostgreSQL + Redis + a Celery worker with beat + the
Microsoft emulator, on loopback. Virtual users sign in over HTTP (password, then TOTP) and loop
through the mix below until the time is up; API clients use an API key.

| class | share | what |
|---|---|---|
| dashboard | 45% | overview, licenses, subscriptions, directory users pages |
| api_read | 25% | subscriptions, directory users (page of 50), usage |
| api_assign | 18% | assign a license, then remove it (each a 202 through the outbox) |
| purchase | 2% | buy one seat of a monthly offer through the API, with an Idempotency-Key |
| admin | 8% | a staff member's admin list and detail pages |
| dsar | 2% | a privacy request on the public form (a code is e-mailed; the officer's queue grows) |

After the run the outbox is drained and checked: every accepted write completed exactly once (no
operation left pending or dead, no MS-RequestId twice), and no SKU has more licenses held than seats
purchased. Reported per class: p50, p95, p99 latency, requests per second and the error rate (a
4xx refusal the API documents, such as 409 "no seats left", is counted apart from errors).

The closed loop above (each virtual user sends its next request when the last one answered) shows
latency at a fixed concurrency, not how much the machine holds. `--find-rate` answers that: an open
loop sends requests on a fixed schedule (the day's mix at R requests per second, whatever the answers),
in stages of rising R on one stack. Latency is counted from each request's scheduled time, so a
backlog shows as latency instead of hiding as a slower schedule. A stage is held when the schedule
was kept (at least 90% of R completed in the stage's time), nothing failed, and the p95 targets are
met (dashboard pages under 300 ms, API reads under 150 ms). The report names the highest rate held
with the targets and the highest rate held with zero errors whatever the latency.

Usage: python -m benchmarks.load [--seconds 60] [--users 8] [--json out.json]
       python -m benchmarks.load --find-rate [--stage-seconds 20] [--rates 2,4,8,12,16,24,32]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from binascii import unhexlify
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests
from django_otp.oath import totp

from benchmarks.stack import Stack

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
MIX = (("dashboard", 45), ("api_read", 25), ("api_assign", 18), ("purchase", 2), ("admin", 8), ("dsar", 2))
REFUSALS = {400, 404, 409, 422}  # documented business refusals of a write (no seats, already assigned, ...)
P95_TARGETS_MS = {"dashboard": 300, "api_read": 150}  # issue 14's targets for the day's mix
SCHEDULE_KEPT = 0.9  # a stage whose completions fall below this share of the offered rate was not held


def totp_code(key_hex: str, offset_steps: int = 0) -> str:
    return f"{totp(unhexlify(key_hex), t0=-offset_steps * 30):06d}"


def sign_in(base: str, email: str, password: str, key_hex: str) -> requests.Session:
    """The browser's way in: the sign-in form, then the authenticator code (retried on the next step if reused)."""
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=30)
    token = CSRF_INPUT.search(page.text).group(1)
    response = session.post(f"{base}/accounts/login/", data={"csrfmiddlewaretoken": token, "username": email,
                            "password": password}, headers={"Referer": f"{base}/accounts/login/"}, timeout=30)
    for attempt in range(4):
        if "/accounts/mfa/verify/" not in response.url:
            break
        token = CSRF_INPUT.search(response.text).group(1)
        response = session.post(response.url, data={"csrfmiddlewaretoken": token, "code": totp_code(key_hex, 0)},
                                headers={"Referer": response.url}, timeout=30)
        if "/accounts/mfa/verify/" in response.url:
            time.sleep(31 - time.time() % 30)  # the code of this step was used by another session: wait a step
            response = session.get(f"{base}/accounts/mfa/verify/", timeout=30)
        del attempt
    if "/accounts/" in response.url:
        raise RuntimeError(f"{email} could not sign in (ended at {response.url})")
    return session


def sign_in_staff(base: str, email: str, password: str, key_hex: str) -> requests.Session:
    """Staff sign in on the admin's own form: password and authenticator code in one step."""
    session = requests.Session()
    for _ in range(3):
        page = session.get(f"{base}/admin/login/", timeout=30)
        token = CSRF_INPUT.search(page.text).group(1)
        response = session.post(f"{base}/admin/login/?next=/admin/", data={
            "csrfmiddlewaretoken": token, "username": email, "password": password, "otp_token": totp_code(key_hex),
        }, headers={"Referer": f"{base}/admin/login/"}, timeout=30)
        if "/admin/login/" not in response.url:
            return session
        time.sleep(31 - time.time() % 30)  # this step's code was used already
    raise RuntimeError(f"{email} could not sign in to the admin")


@dataclass
class Samples:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refusals: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_examples: list[str] = field(default_factory=list)
    accepted_writes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, cls: str, started: float, response: requests.Response | None, write: bool = False) -> None:
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latencies[cls].append(elapsed)
            status = response.status_code if response is not None else 0
            if response is not None and status < 400:
                self.accepted_writes += write
            elif write and status in REFUSALS:
                self.refusals[cls] += 1
            else:
                self.errors[cls] += 1
                if len(self.error_examples) < 20:
                    self.error_examples.append(f"{cls} {status} {response.url if response is not None else ''}")


class VirtualUser(threading.Thread):
    def __init__(self, stack: Stack, session: requests.Session, staff: requests.Session, samples: Samples,
                 until: float, seed: int):
        super().__init__(daemon=True)
        self.stack, self.session, self.staff, self.samples, self.until = stack, session, staff, samples, until
        self.random = random.Random(seed)
        self.scheduled: float | None = None  # an open loop's planned start of the next request (perf_counter)
        setup = stack.setup
        self.org = setup["org"]
        self.api = requests.Session()
        self.api.headers.update({"Authorization": f"Bearer {setup['api_key']}", "X-Organization": self.org})

    def run(self) -> None:
        while time.monotonic() < self.until:
            self.act()

    def act(self) -> None:
        """One request of the day's mix, chosen by its share."""
        classes, weights = zip(*MIX, strict=True)
        getattr(self, self.random.choices(classes, weights)[0])()

    def _request_started(self) -> float:
        """When the next request's latency starts: its scheduled time in an open loop (so waiting for a free
        sender counts), else now. Used once: the second request of an action starts its own clock."""
        scheduled, self.scheduled = self.scheduled, None
        return scheduled if scheduled is not None else time.perf_counter()

    def _get(self, cls: str, session: requests.Session, path: str) -> requests.Response | None:
        started = self._request_started()
        try:
            response = session.get(f"{self.stack.base_url}{path}", timeout=30)
        except requests.RequestException:
            response = None
        self.samples.record(cls, started, response)
        return response

    def _write(self, cls: str, method: str, path: str, body: dict | None = None) -> requests.Response | None:
        started = self._request_started()
        try:
            response = self.api.request(method, f"{self.stack.base_url}{path}", json=body, timeout=30,
                                        headers={"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {})
        except requests.RequestException:
            response = None
        self.samples.record(cls, started, response, write=True)
        return response

    def dashboard(self) -> None:
        page = self.random.choice(["", "licenses/", "subscriptions/", "licenses/users/"])
        self._get("dashboard", self.session, f"/o/{self.org}/{page}")

    def api_read(self) -> None:
        path = self.random.choice(["subscriptions/", "directory-users/?page_size=50", "usage/"])
        self._get("api_read", self.api, f"/api/v1/{path}")

    def api_assign(self) -> None:
        setup = self.stack.setup
        body = {"user": self.random.choice(setup["directory_users"]), "sku": self.random.choice(setup["skus"])}
        response = self._write("api_assign", "POST", "/api/v1/license-assignments/", body)
        if response is not None and response.status_code == 202:
            assignment = response.json().get("id") or response.json().get("assignment", {}).get("id")
            if assignment:
                self._write("api_assign", "DELETE", f"/api/v1/license-assignments/{assignment}/")

    def purchase(self) -> None:
        offers = self.stack.setup["offers"]
        if offers:
            self._write("purchase", "POST", "/api/v1/subscriptions/", {"offer_id": self.random.choice(offers),
                                                                         "quantity": 1})

    def dsar(self) -> None:
        anonymous = requests.Session()
        started = self._request_started()
        response = None
        try:
            form = anonymous.get(f"{self.stack.base_url}/privacy/requests/new/", timeout=30)
            token = CSRF_INPUT.search(form.text).group(1)
            response = anonymous.post(f"{self.stack.base_url}/privacy/requests/new/", timeout=30, data={
                "csrfmiddlewaretoken": token, "name": "Load Requester", "kind": self.random.choice(["access",
                "deletion", "portability"]), "region": self.random.choice(["eu_uk", "us_ca", "other"]),
                "email": f"requester{self.random.randrange(10**6)}@example.org", "details": "",
            }, headers={"Referer": f"{self.stack.base_url}/privacy/requests/new/"})
        except (requests.RequestException, AttributeError):
            response = None
        self.samples.record("dsar", started, response, write=True)

    def admin(self) -> None:
        path = self.random.choice(
            ["licensing/subscription/", "licensing/provisioningoperation/", "accounts/organization/"]
        )
        self._get("admin", self.staff, f"/admin/{path}")


INVARIANTS = r"""
import json
from django.db.models import Count
from core.tenancy import unscoped_no_tenant
from licensing.models import LicenseAssignment, ProvisioningOperation, TenantSku
from licensing.provisioning import operation_sweep
operation_sweep(stale_after_minutes=0)  # what beat's sweeper does, without waiting for its minute
with unscoped_no_tenant():
    ops = ProvisioningOperation.unscoped_objects
    waiting = ops.filter(status__in=["pending", "running"]).count()
    dead = ops.filter(status="dead").count()
    failed = ops.filter(status="failed").count()
    total = ops.count()
    duplicate_ids = ops.values("ms_request_id").annotate(n=Count("id")).filter(n__gt=1).count()
    held = dict(LicenseAssignment.unscoped_objects.filter(state__in=["assigned", "pending", "removing"])
                .values_list("sku_id").annotate(n=Count("id")).values_list("sku_id", "n"))
    bought = dict(TenantSku.unscoped_objects.values_list("pk", "purchased"))
over = {str(k): [v, bought.get(k, 0)] for k, v in held.items() if v > (bought.get(k) or 0)}
print("INVARIANTS " + json.dumps({"operations": total, "waiting": waiting, "dead": dead, "failed": failed,
                                  "duplicate_request_ids": duplicate_ids, "over_assigned": over}))
"""


def check_invariants(stack: Stack, drain_seconds: float = 120) -> dict:
    """Wait for the outbox to drain (sweeping as beat would), then read the invariants from the database."""
    deadline = time.monotonic() + drain_seconds
    while True:
        output = stack.manage("shell", "-v", "0", "-c", INVARIANTS)
        result = json.loads(output.split("INVARIANTS ", 1)[1])
        if result["waiting"] == 0 or time.monotonic() > deadline:
            return result
        time.sleep(3)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(samples: Samples, seconds: float) -> dict:
    rows = {}
    for cls, _ in MIX:
        values = samples.latencies.get(cls, [])
        rows[cls] = {
            "requests": len(values),
            "per_second": round(len(values) / seconds, 1),
            "p50_ms": round(percentile(values, 0.50) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
            "errors": samples.errors.get(cls, 0),
            "refusals": samples.refusals.get(cls, 0),
        }
    total = sum(r["requests"] for r in rows.values())
    return {"classes": rows, "total_requests": total, "per_second": round(total / seconds, 1),
            "error_rate": round(sum(r["errors"] for r in rows.values()) / total, 4) if total else 0.0,
            "accepted_writes": samples.accepted_writes, "error_examples": samples.error_examples}


def run_mix(stack: Stack, *, users: int, seconds: float) -> dict:
    setup = stack.setup
    sessions = [sign_in(stack.base_url, email, setup["password"], setup["totp_hex"])
                for email in setup["members"][:users]]
    staff = sign_in_staff(stack.base_url, setup["staff"], setup["password"], setup["totp_hex"])
    samples = Samples()
    until = time.monotonic() + seconds
    threads = [VirtualUser(stack, sessions[i % len(sessions)], staff, samples, until, seed=i) for i in range(users)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return report(samples, time.monotonic() - started)


def run_paced(stack: Stack, sessions: list[requests.Session], staff: requests.Session, *, rate: float,
              seconds: float, senders: int = 32) -> dict:
    """An open loop: request i of the mix is due at start + i / rate, sent by whichever sender is free."""
    samples = Samples()
    due = itertools.count()
    due_lock = threading.Lock()
    done = []  # one entry per finished action (list.append is atomic)
    total = max(1, round(rate * seconds))
    start = time.perf_counter() + 0.2

    def send(actor: VirtualUser) -> None:
        while True:
            with due_lock:
                index = next(due)
            if index >= total:
                return
            scheduled = start + index / rate
            time.sleep(max(0.0, scheduled - time.perf_counter()))
            actor.scheduled = scheduled
            actor.act()
            done.append(1)

    actors = [VirtualUser(stack, sessions[i % len(sessions)], staff, samples, until=0.0, seed=1000 + i)
              for i in range(senders)]
    threads = [threading.Thread(target=send, args=(actor,), daemon=True) for actor in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    # The stage lasted as long as the schedule, or longer when answers lagged behind it. An action is one
    # draw from the mix (an assignment is two requests: assign, then remove), so the rate counts actions.
    return {**report(samples, max(seconds, elapsed)), "actions_per_second": round(len(done) / max(seconds, elapsed), 1)}


def stage_verdict(rate: float, result: dict) -> dict:
    """Was the offered rate held, and with the latency targets? Reasons name what failed."""
    reasons = []
    if result["actions_per_second"] < SCHEDULE_KEPT * rate:
        reasons.append(f"completed {result['actions_per_second']}/s of {rate}/s offered")
    if result["error_rate"] > 0:
        reasons.append(f"error rate {result['error_rate']:.2%}")
    held = not reasons
    for cls, target in P95_TARGETS_MS.items():
        row = result["classes"].get(cls)
        if row and row["requests"] and row["p95_ms"] >= target:
            reasons.append(f"{cls} p95 {row['p95_ms']} ms (target < {target})")
    return {"rate": rate, "held": held, "meets_targets": not reasons, "reasons": reasons}


def highest_rates(verdicts: list[dict]) -> dict:
    """The highest offered rate held with the targets met, and the highest held at all (zero errors)."""
    return {
        "highest_rate_meeting_targets": max((v["rate"] for v in verdicts if v["meets_targets"]), default=None),
        "highest_rate_held": max((v["rate"] for v in verdicts if v["held"]), default=None),
    }


def find_rate(stack: Stack, *, rates: list[float], stage_seconds: float, members: int,
              warmup_seconds: float = 5) -> dict:
    """Stages of rising rate on one stack; stops after two stages in a row that were not held. A short
    warm-up at the first rate, not counted, fills the connection pools and the workers' caches first."""
    setup = stack.setup
    sessions = [sign_in(stack.base_url, email, setup["password"], setup["totp_hex"])
                for email in setup["members"][:members]]
    staff = sign_in_staff(stack.base_url, setup["staff"], setup["password"], setup["totp_hex"])
    if warmup_seconds > 0:
        run_paced(stack, sessions, staff, rate=rates[0], seconds=warmup_seconds)
    stages, verdicts, misses = [], [], 0
    for rate in rates:
        result = run_paced(stack, sessions, staff, rate=rate, seconds=stage_seconds)
        verdict = stage_verdict(rate, result)
        stages.append({"rate": rate, "result": result, "verdict": verdict})
        verdicts.append(verdict)
        print(f"  {rate:>6}/s offered: {result['actions_per_second']}/s done, "
              f"{'held' if verdict['held'] else 'not held'}"
              f"{'' if verdict['meets_targets'] else ' — ' + '; '.join(verdict['reasons'])}", flush=True)
        misses = 0 if verdict["held"] else misses + 1
        if misses >= 2:
            break
    return {"stages": stages, **highest_rates(verdicts)}


def print_rate_report(found: dict) -> None:
    print(f"\n{'offered/s':>10}{'done/s':>8}{'err':>7}{'dash p95':>10}{'api p95':>9}{'assign p95':>12}  verdict")
    for stage in found["stages"]:
        rows, verdict = stage["result"]["classes"], stage["verdict"]
        print(f"{stage['rate']:>10}{stage['result']['actions_per_second']:>8}{stage['result']['error_rate']:>7.1%}"
              f"{rows['dashboard']['p95_ms']:>10}{rows['api_read']['p95_ms']:>9}{rows['api_assign']['p95_ms']:>12}"
              f"  {'meets targets' if verdict['meets_targets'] else ('held' if verdict['held'] else 'not held')}")
    print(f"\nhighest rate meeting the p95 targets: {found['highest_rate_meeting_targets']} req/s; "
          f"highest rate held with zero errors: {found['highest_rate_held']} req/s")


def print_report(result: dict, invariants: dict) -> None:
    print(f"\n{'class':<12}{'req':>7}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}{'refused':>9}")
    for cls, row in result["classes"].items():
        print(f"{cls:<12}{row['requests']:>7}{row['per_second']:>8}{row['p50_ms']:>9}{row['p95_ms']:>9}"
              f"{row['p99_ms']:>9}{row['errors']:>8}{row['refusals']:>9}")
    print(f"\ntotal {result['total_requests']} requests, {result['per_second']} req/s, "
          f"error rate {result['error_rate']:.2%}, {result['accepted_writes']} accepted writes")
    print(f"invariants: {json.dumps(invariants)}")
    for example in result["error_examples"][:10]:
        print(f"  error: {example}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--find-rate", action="store_true", help="open-loop stages of rising rate instead")
    parser.add_argument("--stage-seconds", type=float, default=20)
    parser.add_argument("--rates", default="2,4,8,12,16,24,32,48", help="offered rates per stage, req/s")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="portal-load-") as workdir, \
            Stack(Path(workdir), members=args.users) as stack:
        if args.find_rate:
            found = find_rate(stack, rates=[float(r) for r in args.rates.split(",")],
                              stage_seconds=args.stage_seconds, members=args.users)
            result = None
        else:
            result = run_mix(stack, users=args.users, seconds=args.seconds)
        invariants = check_invariants(stack)
    if args.find_rate:
        print_rate_report(found)
        print(f"invariants: {json.dumps(invariants)}")
    else:
        print_report(result, invariants)
    if args.json:
        figures = {"rate_search": found} if args.find_rate else {"load": result}
        Path(args.json).write_text(json.dumps({**figures, "invariants": invariants}, indent=2))
    ok = (invariants["waiting"] == 0 and invariants["dead"] == 0 and not invariants["over_assigned"]
          and invariants["duplicate_request_ids"] == 0 and (args.find_rate or result["error_rate"] == 0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
