"""Where one request's time goes: each endpoint of the HTTP benchmark, in process, statement by statement.

Two steps, so the slow one runs once:

- ``prepare``: builds the HTTP benchmark's data in the database of ``DATABASE_URL`` (which must be empty
  or disposable: it is dropped and created again) with the same stack (benchmarks/stack.py: migrations and
  seeding as the owner, the demo organisation plus ``--users`` directory users), a role that neither owns
  the tables nor bypasses row-level security, and a session signed in the browser's way. What the second
  step needs (keys, the session cookie, the API key) goes to ``--state``.
- ``run``: serves each endpoint in this process with the Django test client as that role (``DEBUG`` off, the
  owner as the system alias, as the HTTP benchmark), prints the statements of one request on every
  connection and the profiler's top functions over ``--requests`` requests.

Usage: python -m benchmarks.profile_requests prepare --state /tmp/profile.json [--users 10000]
       python -m benchmarks.profile_requests run --state /tmp/profile.json [--only overview] [--top 25]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from benchmarks.http_bench import ENDPOINTS, SEED_USERS

# How much of each statement to print (PROFILE_SQL_CHARS=0 for all of it).
SQL_CHARS = int(os.environ.get("PROFILE_SQL_CHARS", "400")) or None


def prepare(state: Path, users: int) -> None:
    import psycopg

    from benchmarks.load import sign_in
    from benchmarks.stack import Stack

    owner_url = os.environ["DATABASE_URL"]
    parts = urlsplit(owner_url)
    name = parts.path.lstrip("/")
    role, password = f"{name}_app", "profile"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f"DROP ROLE IF EXISTS {role}")
        c.execute(f'CREATE DATABASE "{name}"')
        c.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOBYPASSRLS")
    with psycopg.connect(owner_url, autocommit=True) as c:
        c.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        c.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}")
        c.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}")
    host = parts.netloc.rsplit("@", 1)[-1]
    app_url = urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))
    with tempfile.TemporaryDirectory(prefix="portal-profile-") as tmp:
        stack = Stack(Path(tmp), members=1, web_workers=1, web_threads=1, database_url=owner_url,
                      app_database_url=app_url, worker=False, redis=False,
                      extra_env={"API_KEY_RATE": "100000000/min", "SESSION_IDLE_SECONDS": str(30 * 86400),
                                 "SESSION_ABSOLUTE_SECONDS": str(30 * 86400),
                                 "REDIS_URL": os.environ.get("REDIS_URL", "")})
        with stack:
            print(stack.manage("shell", "-v", "0", "-c", SEED_USERS.format(count=users), debug=True, owner=True))
            setup = stack.setup
            session = sign_in(stack.base_url, setup["members"][0], setup["password"], setup["totp_hex"])
            env = {key: stack.env[key] for key in ("DATABASE_URL", "SYSTEM_DATABASE_URL", "REDIS_URL",
                                                   "SESSION_IDLE_SECONDS", "SESSION_ABSOLUTE_SECONDS",
                                                   "API_KEY_RATE", "DB_CONN_MAX_AGE", *stack.secrets)}
            state.write_text(json.dumps({"env": env, "setup": setup, "cookies": dict(session.cookies.items())}))
    print(f"prepared {name}; state in {state}")


def run(state: Path, *, only: str | None, requests: int, top: int, sort: str, statements: bool,
        urls: list[str] = (), dump: Path | None = None, explain: bool = False) -> None:
    data = json.loads(state.read_text())
    os.environ.update(data["env"])
    os.environ.setdefault("PORTAL_VAR_DIR", str(state.with_suffix(".var")))
    os.environ.update({"DEBUG": "0", "SECURE_COOKIES": "0", "BEHIND_TLS_PROXY": "0", "LOG_LEVEL": "WARNING",
                       "DJANGO_SETTINGS_MODULE": "portal.settings"})
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    call_command("collectstatic", "--noinput", "-v", "0")

    setup = data["setup"]
    client = Client(HTTP_HOST="127.0.0.1")
    for key, value in data["cookies"].items():
        client.cookies[key] = value
    how = {
        "api": {"HTTP_AUTHORIZATION": f"Bearer {setup['api_key']}", "HTTP_X_ORGANIZATION": setup["org"]},
        "session": {},
        "anonymous": {},
    }
    aliases = [alias for alias in ("default", "system") if alias in connections.databases]
    # --url KIND:PATH adds an endpoint of one's own (a cheap one shows what every request pays).
    extra = [(f"{kind} {path}", path, kind, None) for kind, path in (u.split(":", 1) for u in urls)]
    for name, path, kind, _goal in [*ENDPOINTS, *extra]:
        if only and only.lower() not in name.lower():
            continue
        url = path.format(org=setup["org"])
        headers = how[kind]
        anonymous = Client(HTTP_HOST="127.0.0.1")
        # The API is called the way wrk calls it: the key alone, no session cookie.
        get = (client if kind == "session" else anonymous).get
        for _ in range(3):
            response = get(url, **headers)
            assert response.status_code == 200, (url, response.status_code, response.content[:300])
        timings = []
        for _ in range(requests):
            start = time.perf_counter()
            get(url, **headers)
            timings.append(time.perf_counter() - start)
        median = sorted(timings)[len(timings) // 2]
        captures = [CaptureQueriesContext(connections[alias]) for alias in aliases]
        for capture in captures:
            capture.__enter__()
        start = time.perf_counter()
        get(url, **headers)
        single = time.perf_counter() - start
        for capture in captures:
            capture.__exit__(None, None, None)
        # Read now: the next request empties the connection's query log.
        captured = [list(capture.captured_queries) for capture in captures]
        if explain:
            plans = {alias: [] for alias in aliases}
            with contextlib.ExitStack() as stack:
                for alias in aliases:
                    stack.enter_context(connections[alias].execute_wrapper(_explaining(plans[alias])))
                get(url, **headers)
            print(f"\n--- {name}: each SELECT as the server ran it (EXPLAIN ANALYZE, same transaction and role)")
            for alias in aliases:
                for sql, total, scans in plans[alias]:
                    read = ", ".join(f"{kind} on {table} read {rows:,} rows" for kind, table, rows in scans)
                    print(f"  [{alias} {total:7.3f} ms] {sql[:120]}" + (f"\n      {read}" if read else ""))
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        for _ in range(requests):
            get(url, **headers)
        profile.disable()
        each = (time.perf_counter() - start) / requests
        counts = ", ".join(f"{alias} {len(c)}" for alias, c in zip(aliases, captured, strict=True))
        print(f"\n=== {name}: {url} — median {median * 1000:.1f} ms of {requests}, {single * 1000:.1f} ms once "
              f"(statements logged), {each * 1000:.1f} ms each under the profiler; "
              f"statements: {counts}")
        if statements:
            for alias, queries in zip(aliases, captured, strict=True):
                for query in queries:
                    print(f"  [{alias} {float(query['time']) * 1000:6.2f} ms] {query['sql'][:SQL_CHARS]}")
        if dump is not None:
            dump.mkdir(parents=True, exist_ok=True)
            profile.dump_stats(dump / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".prof"))
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(sort).print_stats(top)
        print(out.getvalue())


def _explaining(plans: list):
    """An execute wrapper that has the server explain each ``SELECT`` (analysed, so run for real, in the same
    transaction, tenant setting and role as the request) before running it, appending its execution time and
    the whole-table reads of more than 500 rows to ``plans``: where a missing or unusable index shows."""

    def wrapper(execute, sql, params, many, context):
        cursor = context["cursor"]
        # A server-side cursor (a streamed export) declares its statement, which cannot be explained as such.
        if not many and sql.lstrip().upper().startswith("SELECT") and not getattr(cursor, "name", None):
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            (document,) = cursor.fetchone()
            plan = (json.loads(document) if isinstance(document, str) else document)[0]
            scans = []

            def walk(node):
                if node["Node Type"] in ("Seq Scan", "Bitmap Heap Scan"):
                    rows = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get(
                        "Actual Loops", 1)
                    if rows > 500:
                        scans.append((node["Node Type"], node.get("Relation Name", "?"), rows))
                for child in node.get("Plans", []):
                    walk(child)

            walk(plan["Plan"])
            plans.append((sql, plan["Execution Time"], scans))
        return execute(sql, params, many, context)

    return wrapper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_requests", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--state", type=Path, required=True)
    p.add_argument("--users", type=int, default=10_000)
    r = sub.add_parser("run")
    r.add_argument("--state", type=Path, required=True)
    r.add_argument("--only")
    r.add_argument("--url", action="append", default=[], metavar="KIND:PATH",
                   help="also profile this path, as api, session or anonymous ({org} is the demo organisation)")
    r.add_argument("--requests", type=int, default=30)
    r.add_argument("--top", type=int, default=30)
    r.add_argument("--sort", default="cumulative")
    r.add_argument("--no-statements", dest="statements", action="store_false")
    r.add_argument("--dump", type=Path, metavar="DIR",
                   help="also write each endpoint's profile to DIR/<endpoint>.prof, for pstats or snakeviz")
    r.add_argument("--explain", action="store_true",
                   help="also serve one request with every SELECT explained by the server (PostgreSQL only): "
                        "its execution time and the large whole-table reads")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.state, args.users)
    else:
        run(args.state, only=args.only, requests=args.requests, top=args.top, sort=args.sort,
            statements=args.statements, urls=args.url, dump=args.dump, explain=args.explain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
