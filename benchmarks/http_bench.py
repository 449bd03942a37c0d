"""Requests per second over real HTTP: the portal against a bare Django project, same server, same database.

Both are served by gunicorn with the same (sync) workers, against the same database: a fresh
``perf_http_*`` database on the PostgreSQL server of ``DATABASE_URL``, or a SQLite file when it is
unset. The portal runs with ``DEBUG`` off and keys of its own (benchmarks/stack.py), seeded with the
demo organisation plus 10,000 directory users. ``wrk`` loads each endpoint for a fixed time; the
table gives requests per second, the 95th-percentile latency and the ratio to the bare view.

Signed-in pages use a session that passed the authenticator step (the browser's way in, as
``make load`` signs in); the API uses an API key. The API key rate limit is raised for the run (the
throttle still runs; only its limit would turn the load into 429s).

``--web-threads N`` serves both with N threads per worker (gunicorn's gthread), as production does
(Dockerfile, docker-compose.yml: 3 workers of 4 threads); the default, 1, is the issue's set-up of sync
workers. Either way both servers get the same.

Usage: python -m benchmarks.http_bench [--seconds 5] [--connections 20] [--users 10000] [--web-threads 1]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from benchmarks.stack import Stack, free_port

DIRECTORY_USERS = 10_000
BARE = "bare Django, one query (JSON)"
# (name, path, how it is reached, goal as a fraction of the bare view's req/s)
ENDPOINTS = (
    ("API directory users, 25 rows (API key)", "/api/v1/directory-users/?page_size=25", "api", 0.15),
    ("API subscriptions (API key)", "/api/v1/subscriptions/", "api", 0.15),
    ("overview page", "/o/{org}/", "session", 0.10),
    ("licenses page", "/o/{org}/licenses/", "session", 0.10),
    ("subscriptions page", "/o/{org}/subscriptions/", "session", 0.10),
    ("directory users page", "/o/{org}/licenses/users/", "session", 0.10),
    ("sign-in page (anonymous)", "/accounts/login/", "anonymous", 0.30),
)

# Directory users as the sync stores them (encrypted fields, blind indexes), each holding one license.
SEED_USERS = r"""
import uuid
from django.utils import timezone
from accounts.demo import DEMO_ORG_SLUG
from accounts.models import Organization
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, LicenseAssignment, TenantSku

org = Organization.objects.get(slug=DEMO_ORG_SLUG)
now = timezone.now()
with tenant_context(org):
    pools = list(TenantSku.objects.all())
    have = DirectoryUser.objects.count()
    for chunk in range(0, {count}, 1000):
        users = [DirectoryUser(organization=org, graph_id=uuid.uuid4(), display_name=f"Bench User {{n}}",
                               user_principal_name=f"bench{{n}}@fabrikam.onmicrosoft.com",
                               mail=f"bench{{n}}@fabrikam.example", job_title="Analyst", usage_location="US",
                               has_usage_location=True, last_sign_in_at=now, source_hash=f"{{n:064}}")
                 for n in range(chunk, min(chunk + 1000, {count}))]
        DirectoryUser.objects.bulk_create(users)
        if pools:
            LicenseAssignment.objects.bulk_create([
                LicenseAssignment(organization=org, user=user, sku=pools[n % len(pools)],
                                  state=LicenseAssignment.State.ASSIGNED,
                                  source=LicenseAssignment.Source.TENANT, assigned_at=now)
                for n, user in enumerate(users)])
    print("SEEDED", have, DirectoryUser.objects.count())
# Fresh planner statistics and visibility map, as autovacuum leaves them within a minute of such a load in
# production (PostgreSQL 13+ vacuums after inserts too): without the map, counting a directory's users from its
# covering index still reads every row of the table.
from django.db import connection
if connection.vendor == "postgresql":
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
"""

# wrk prints p50/75/90/99 only; this adds p95 and counts every answer that is not a 2xx.
WRK_SCRIPT = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) not2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then not2xx = not2xx + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("not2xx") end
  local e = summary.errors
  io.write(string.format("WRK requests=%d duration_us=%d p50_us=%d p95_us=%d p99_us=%d not2xx=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    bad, e.connect + e.read + e.write + e.timeout))
end
"""
WRK_LINE = re.compile(r"WRK (.*)")


@dataclass
class Figure:
    name: str
    path: str
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    not_2xx: int
    errors: int
    goal: float | None = None
    ratio: float | None = None
    duration_s: float = 0.0


def ensure_wrk() -> str:
    """The load generator, from Debian's packages: installed when missing and we may, else a clear refusal."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing it with apt-get...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env, timeout=600)
        found = shutil.which("wrk")
        if found:
            return found
    raise RuntimeError("the HTTP benchmark needs wrk: install it with `apt-get install wrk` (Debian/Ubuntu)")


def run_wrk(wrk: str, url: str, *, seconds: float, connections: int, threads: int, headers: dict,
            script: Path) -> dict:
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "--timeout", "10s", "-s", str(script)]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    result = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = WRK_LINE.search(result.stdout)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed on {url}:\n{result.stdout}\n{result.stderr}")
    return {key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())}


class Database:
    """A fresh database for one run, or a SQLite file; dropped afterwards.

    On PostgreSQL (the server of DATABASE_URL) the portal connects as a role of its own that neither owns
    the tables nor bypasses row-level security, as in production (deploy/postgres-init.sh), so the
    policies are part of what is measured; migrations and seeding run as DATABASE_URL's user, the owner.
    """

    def __init__(self, workdir: Path, base_url: str | None):
        self.base_url = base_url if base_url and base_url.startswith(("postgres", "postgresql")) else None
        self.app_url = None
        if self.base_url:
            suffix = uuid.uuid4().hex[:10]
            self.name, self.role = f"perf_http_{suffix}", f"perf_http_app_{suffix}"
            parts = urlsplit(self.base_url)
            self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
            host = parts.netloc.rsplit("@", 1)[-1]
            self.app_url = urlunsplit(parts._replace(netloc=f"{self.role}:{suffix}@{host}", path=f"/{self.name}"))
            self.password = suffix
        else:
            self.url = f"sqlite:///{workdir / 'var' / 'portal.sqlite3'}"

    def _admin(self, *statements: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(urlunsplit(urlsplit(self.base_url)._replace(path=f"/{database}")), autocommit=True) as c:
            for sql in statements:
                c.execute(sql)

    def __enter__(self) -> Database:
        if self.base_url:
            self._admin(f'CREATE DATABASE "{self.name}"',
                        f"CREATE ROLE {self.role} LOGIN PASSWORD '{self.password}' NOSUPERUSER NOBYPASSRLS")
            self._admin(f"GRANT USAGE ON SCHEMA public TO {self.role}",
                        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
                        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {self.role}",
                        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {self.role}",
                        database=self.name)
        return self

    def __exit__(self, *exc) -> None:
        if self.base_url:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)', f"DROP ROLE IF EXISTS {self.role}")


def check_2xx(url: str, headers: dict) -> None:
    response = requests.get(url, headers=headers, allow_redirects=False, timeout=60)
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"{url} answered {response.status_code} before the load (expected a 2xx)")


def run(*, seconds: float = 5, connections: int = 20, threads: int = 2, workers: int = 2, web_threads: int = 1,
        users: int = DIRECTORY_USERS, warmup: float = 1, only: str | None = None, say=print) -> list[Figure]:
    """Start everything, load each endpoint, stop everything; the bare view's figure comes first.

    ``only`` keeps the endpoints whose name contains it (case-insensitive), besides the bare view.
    """
    from benchmarks.load import sign_in

    wrk = ensure_wrk()
    # Both servers keep their connections for the same time: the portal's default unless overridden.
    conn_max_age = os.environ.get("DB_CONN_MAX_AGE", "60")
    if shutil.which("gunicorn") is None and not _module_available("gunicorn"):
        raise RuntimeError("the HTTP benchmark needs gunicorn (pip install -r requirements.txt)")
    with tempfile.TemporaryDirectory(prefix="portal-http-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "var").mkdir()
        script = workdir / "status.lua"
        script.write_text(WRK_SCRIPT)
        with Database(workdir, os.environ.get("DATABASE_URL")) as database:
            say(f"database: {'PostgreSQL ' + database.name if database.base_url else 'SQLite'}; "
                f"{workers} gunicorn workers each, "
                f"{'sync' if web_threads == 1 else f'{web_threads} threads each'}; "
                f"wrk -t{threads} -c{connections} -d{seconds}s; "
                f"DB_CONN_MAX_AGE={conn_max_age} for both")
            stack = Stack(workdir, members=1, web_workers=workers, web_threads=web_threads,
                          database_url=database.url, app_database_url=database.app_url, worker=False,
                          redis=shutil.which("redis-server") is not None,
                          extra_env={"API_KEY_RATE": "100000000/min", "DB_CONN_MAX_AGE": conn_max_age})
            with stack:
                out = stack.manage("shell", "-v", "0", "-c", SEED_USERS.format(count=users), debug=True, owner=True)
                say(f"seeded the demo organisation and {users:,} directory users ({out.strip()})")
                bare_port = free_port()
                stack.web_start("bare", "benchmarks.bare.wsgi:application", bare_port)
                setup = stack.setup
                session = sign_in(stack.base_url, setup["members"][0], setup["password"], setup["totp_hex"])
                cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
                how = {
                    "api": {"Authorization": f"Bearer {setup['api_key']}", "X-Organization": setup["org"]},
                    "session": {"Cookie": cookie},
                    "anonymous": {},
                }
                targets = [(BARE, f"http://127.0.0.1:{bare_port}/bare/", {}, None)]
                targets += [(name, stack.base_url + path.format(org=setup["org"]), how[kind], goal)
                            for name, path, kind, goal in ENDPOINTS
                            if not only or only.lower() in name.lower()]
                figures = []
                for name, url, headers, goal in targets:
                    check_2xx(url, headers)
                    if warmup:
                        run_wrk(wrk, url, seconds=warmup, connections=connections, threads=threads,
                                headers=headers, script=script)
                    raw = run_wrk(wrk, url, seconds=seconds, connections=connections, threads=threads,
                                  headers=headers, script=script)
                    parts = urlsplit(url)
                    figure = Figure(
                        name, parts.path + (f"?{parts.query}" if parts.query else ""), raw["requests"],
                        raw["requests"] / (raw["duration_us"] / 1e6), raw["p50_us"] / 1e3, raw["p95_us"] / 1e3,
                        raw["p99_us"] / 1e3, raw["not2xx"], raw["errors"], goal,
                        # wrk reports almost no duration when no request finished: the run still lasted this long.
                        max(raw["duration_us"] / 1e6, float(seconds)))
                    figures.append(figure)
                    say(f"{name}: {figure.rps:,.0f} req/s, p95 {figure.p95_ms:.1f} ms"
                        + (f", {figure.not_2xx} not 2xx" if figure.not_2xx else ""))
    bare = figures[0].rps
    for figure in figures:
        figure.ratio = figure.rps / bare if bare else 0.0
    return figures


def _module_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def print_figures(figures: list[Figure]) -> None:
    header = ("endpoint", "req/s", "p95 ms", "ratio", "goal", "result", "not 2xx")
    # No request finished inside the run: there is no latency to report, only that it was longer.
    rows = [(f.name, f"{f.rps:,.0f}", f"{f.p95_ms:.1f}" if f.requests else f"> {f.duration_s:.0f} s", f"{f.ratio:.3f}",
             f">= {f.goal:.2f}" if f.goal else "-",
             "-" if not f.goal else ("pass" if f.ratio >= f.goal else "FAIL"), str(f.not_2xx + f.errors))
            for f in figures]
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_HTTP_SECONDS", 5)))
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=1,
                        help="threads per gunicorn worker, for both servers (1: sync workers)")
    parser.add_argument("--users", type=int, default=DIRECTORY_USERS)
    parser.add_argument("--only", help="load only the endpoints whose name contains this, besides the bare view")
    args = parser.parse_args(argv)
    figures = run(seconds=args.seconds, connections=args.connections, threads=args.threads, workers=args.workers,
                  web_threads=args.web_threads, users=args.users, only=args.only)
    print()
    print_figures(figures)
    return 1 if any(f.not_2xx or f.errors for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
