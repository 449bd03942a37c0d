"""The whole system on this machine, for load and chaos runs: nothing shared, everything stopped after.

PostgreSQL (a private cluster, so a chaos run may restart it), Redis (a private server), the
Microsoft emulator, gunicorn and a Celery worker with beat, all on free loopback ports under one
working folder. ``Stack`` is a context manager; every process it started is gone when it exits.

Needs PostgreSQL's server binaries (Debian's postgresql package), redis-server, and root or the
``postgres`` user (initdb refuses to run as root, so it runs as ``postgres`` through runuser).
"""

from __future__ import annotations

import base64
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Creates what the load needs inside the seeded demo organisation and prints it as JSON.
SETUP = r"""
import json
from accounts.api_keys import api_key_create
from accounts.demo import DEMO_ORG_SLUG, DEMO_OWNER_EMAIL, DEMO_PASSWORD, DEMO_TOTP_KEY_HEX
from accounts.models import Membership, Organization, StaffGrant, StaffRole, TOTPDevice, User
from accounts.roles import Role
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, Price, TenantSku
from django.utils import timezone

org = Organization.objects.get(slug=DEMO_ORG_SLUG)
owner = User.objects.get_by_email(DEMO_OWNER_EMAIL)
people = []
for n in range({members}):
    email = f"load{{n}}@fabrikam.example"
    user = User.objects.create_user(email, DEMO_PASSWORD, full_name=f"Load {{n}}", email_verified_at=timezone.now())
    Membership.objects.get_or_create(user=user, organization=org, defaults={{"role": Role.OWNER}})
    TOTPDevice.objects.get_or_create(user=user, name="load", defaults={{"key": DEMO_TOTP_KEY_HEX, "confirmed": True}})
    people.append(email)
staff = User.objects.create_user("staff-load@reseller.example", DEMO_PASSWORD, full_name="Load Staff",
                                 email_verified_at=timezone.now(), is_staff=True, is_superuser=True)
TOTPDevice.objects.create(user=staff, name="load", key=DEMO_TOTP_KEY_HEX, confirmed=True)
# Staff see a customer only through a grant (decision 021): the admin mix reads Fabrikam's rows and is audited.
StaffGrant.objects.create(organization=org, staff=staff, roles=[StaffRole.SUPPORT_READER], status="active",
                          starts_at=timezone.now(), expires_at=timezone.now() + timezone.timedelta(days=1),
                          justification="Load test", requested_by=staff, approved_at=timezone.now())
with tenant_context(org):
    _, secret = api_key_create(organization=org, name="load", role=Role.OWNER, expires_at=None, actor=owner)
    skus = [str(pk) for pk in TenantSku.objects.values_list("pk", flat=True)]
    users = [str(pk) for pk in DirectoryUser.objects.values_list("pk", flat=True)]
    monthly = Price.objects.filter(billing_cycle="monthly", term_duration="P1M", is_active=True)
    offers = [str(pk) for pk in monthly.values_list("pk", flat=True)[:5]]
print("LOAD-SETUP " + json.dumps({{"org": org.slug, "api_key": secret, "members": people,
      "staff": "staff-load@reseller.example", "password": DEMO_PASSWORD, "totp_hex": DEMO_TOTP_KEY_HEX,
      "skus": skus, "directory_users": users, "offers": offers}}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, seconds: float = 30, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{process.args[:3]} exited with {process.returncode}") from None
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {seconds}s")


class Stack:
    def __init__(self, workdir: Path, *, members: int = 8, web_workers: int = 2, web_threads: int = 4,
                 worker_concurrency: int = 4, database_url: str | None = None, redis: bool = True,
                 worker: bool = True, extra_env: dict | None = None, app_database_url: str | None = None):
        """``database_url``: an existing, empty database instead of a private cluster (the HTTP benchmark's
        shared server, or SQLite); ``redis``/``worker`` False leave those processes out;
        ``app_database_url``: what the web and worker processes connect as (production's non-owner role,
        which row-level security binds), while migrations and seeding run as the owner."""
        self.workdir = Path(workdir)
        self.members = members
        self.external_database_url, self.use_redis, self.use_worker = database_url, redis, worker
        self.extra_env = dict(extra_env or {})
        self.app_database_url = app_database_url
        self.web_workers, self.web_threads, self.worker_concurrency = web_workers, web_threads, worker_concurrency
        self.processes: dict[str, subprocess.Popen] = {}
        self.pg_port, self.redis_port = free_port(), free_port()
        self.emulator_port, self.web_port = free_port(), free_port()
        self.pg_dir = self.workdir / "pg"
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.emulator_url = f"https://127.0.0.1:{self.emulator_port}"
        self.setup: dict = {}
        self.db_passwords = {"app": secrets.token_urlsafe(16), "system": secrets.token_urlsafe(16)}
        # Production settings (DEBUG off: real error handlers, compressed static files), with keys of
        # its own; only the cookies are allowed over plain HTTP, since everything is on loopback.
        self.secrets = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_MASTER_KEYS": f"load1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
            "BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "AUDIT_HMAC_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        }

    # --- environment -------------------------------------------------------------------------
    # The roles of the production topology (deploy/postgres-roles.sql): the owner migrates and seeds,
    # gunicorn and the worker run as portal_app (bound by row-level security) with the allow-listed
    # cross-tenant reads on portal_system (BYPASSRLS), as in docker-compose.yml.
    @property
    def owner_database_url(self) -> str:
        return self.external_database_url or f"postgres://postgres@127.0.0.1:{self.pg_port}/portal"

    @property
    def database_url(self) -> str:
        if self.external_database_url:
            return self.app_database_url or self.external_database_url
        return f"postgres://portal_app:{self.db_passwords['app']}@127.0.0.1:{self.pg_port}/portal"

    @property
    def system_database_url(self) -> str:
        if self.external_database_url:
            # A shared server's owner stands in for portal_system: it bypasses row-level security too.
            return self.external_database_url if self.app_database_url else ""
        return f"postgres://portal_system:{self.db_passwords['system']}@127.0.0.1:{self.pg_port}/portal"

    @property
    def env(self) -> dict:
        var = self.workdir / "var"
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_", "PORTAL_TESTING"))},
            "DATABASE_URL": self.database_url,
            "SYSTEM_DATABASE_URL": self.system_database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0" if self.use_redis else "",
            "MSEMULATOR_URL": self.emulator_url,
            "MS_CA_BUNDLE": str(var / "msemulator" / "msemulator-ca.pem"),
            "PORTAL_VAR_DIR": str(var),
            # Every virtual visitor comes from 127.0.0.1: one address's limit on the public request form
            # would turn the day's mix into 429s (the limit has its own test in privacy/tests).
            "PRIVACY_PUBLIC_FORM_PER_IP_HOUR": "1000000",
            "ERASURE_LOG_PATH": str(var / "erasure-log.jsonl"),
            "DB_CONN_MAX_AGE": os.environ.get("DB_CONN_MAX_AGE", "60"),
            # A killed worker's operation is re-run once its lease expires: short here, so a chaos run's
            # drain fits in minutes (production keeps 10 minutes, longer than any Microsoft call).
            "LICENSING_OPERATION_LEASE_SECONDS": "30",
            "DEBUG": "0",
            "SECURE_COOKIES": "0",
            "BEHIND_TLS_PROXY": "0",  # plain HTTP on loopback: no HTTPS redirect or HSTS
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            **self.secrets,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def _start(self, name: str, argv: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the process's life)
        process = subprocess.Popen(argv, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
        self.processes[name] = process
        return process

    def manage(self, *args: str, timeout: float = 600, debug: bool = False, owner: bool = False) -> str:
        """A management command against the stack; ``debug`` for the demo seeding, which refuses production;
        ``owner`` for migrations and seeding, which run as the table owner (the app never does)."""
        env = {**self.env, "DEBUG": "1"} if debug else self.env
        if owner:
            env = {**env, "DATABASE_URL": self.owner_database_url, "SYSTEM_DATABASE_URL": ""}
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    # --- PostgreSQL (private, restartable) ----------------------------------------------------
    def _pg_bin(self, name: str) -> str:
        found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
        if not found:
            raise RuntimeError("PostgreSQL server binaries not found (apt install postgresql)")
        return found[-1]

    def _as_postgres(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def postgres_start(self) -> None:
        subprocess.run(self._as_postgres([
            self._pg_bin("pg_ctl"), "-D", str(self.pg_dir), "-l", str(self.workdir / "postgres.log"), "-w",
            "-o", f"-p {self.pg_port} -k {self.pg_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c max_connections=200",
            "start"]), check=True, capture_output=True, timeout=60)

    def postgres_stop(self, mode: str = "fast") -> None:
        subprocess.run(self._as_postgres([self._pg_bin("pg_ctl"), "-D", str(self.pg_dir), "-m", mode, "-w", "stop"]),
                       check=False, capture_output=True, timeout=60)

    def _postgres_init(self) -> None:
        self.pg_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres")
            shutil.chown(self.pg_dir, "postgres")
        subprocess.run(self._as_postgres([self._pg_bin("initdb"), "-D", str(self.pg_dir), "-U", "postgres",
                                          "--auth=trust", "-E", "UTF8"]), check=True, capture_output=True, timeout=120)
        self.postgres_start()
        subprocess.run(["psql", f"postgres://postgres@127.0.0.1:{self.pg_port}/postgres", "-qc",
                        "CREATE DATABASE portal"], check=True, capture_output=True, timeout=60)
        subprocess.run(["psql", self.owner_database_url, "-q", "-v", "ON_ERROR_STOP=1", "-v", "owner=postgres",
                        "-v", f"app_password={self.db_passwords['app']}",
                        "-v", f"system_password={self.db_passwords['system']}",
                        "-f", str(ROOT / "deploy" / "postgres-roles.sql")], check=True, capture_output=True, timeout=60)

    # --- Redis (private, stoppable) -----------------------------------------------------------
    def redis_start(self) -> None:
        process = self._start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no", "--dir", str(self.workdir)])
        wait_for_port(self.redis_port, 15, process)

    def redis_stop(self) -> None:
        self.stop("redis")

    # --- the portal ---------------------------------------------------------------------------
    def worker_start(self) -> subprocess.Popen:
        process = self._start("worker", [sys.executable, "-m", "celery", "-A", "portal", "worker", "--beat",
                                         "-Q", "default,provisioning,privacy", "--pool", "threads",
                                         "--concurrency", str(self.worker_concurrency), "--loglevel", "warning",
                                         "--schedule", str(self.workdir / "var" / "celerybeat-schedule")])
        time.sleep(1)
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited: see {self.workdir / 'worker.log'}")
        return process

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def __enter__(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "var").mkdir(exist_ok=True)
        try:
            if self.external_database_url is None:
                self._postgres_init()
            if self.use_redis:
                self.redis_start()
            self.manage("migrate", "--noinput", "-v", "0", owner=True)
            self.manage("collectstatic", "--noinput", "-v", "0")
            emulator_dir = self.workdir / "var" / "msemulator"
            emulator_dir.mkdir(parents=True, exist_ok=True)
            process = self._start("emulator", [sys.executable, "-m", "msemulator", "--port", str(self.emulator_port),
                                               "--state", str(emulator_dir / "state.sqlite3")])
            self._wait_for_emulator(emulator_dir / "msemulator-ca.pem", process)
            self.manage("seed_demo", "--emulator-url", self.emulator_url, debug=True, owner=True)
            output = self.manage("shell", "-v", "0", "-c", SETUP.format(members=self.members), debug=True,
                                 owner=True)
            self.setup = json.loads(output.split("LOAD-SETUP ", 1)[1])
            if self.use_worker:
                self.worker_start()
            self.web_start("web", "portal.wsgi:application", self.web_port)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def web_start(self, name: str, application: str, port: int, env: dict | None = None) -> subprocess.Popen:
        """gunicorn serving ``application`` on ``port``: sync workers when ``web_threads`` is 1."""
        web = self._start(name, [sys.executable, "-m", "gunicorn", application, "--bind", f"127.0.0.1:{port}",
                                 "--workers", str(self.web_workers), "--threads", str(self.web_threads),
                                 # gunicorn closes an idle keep-alive connection after 2 s by default. A load
                                 # client reusing one at that instant sees it dropped, and a POST cannot be
                                 # re-sent safely; in production nginx holds the clients' connections instead.
                                 "--keep-alive", "30", "--log-level", "warning"], env=env)
        wait_for_port(port, 60, web)
        return web

    def _wait_for_emulator(self, ca: Path, process: subprocess.Popen, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("the emulator exited")
            if ca.exists():
                try:
                    context = ssl.create_default_context(cafile=str(ca))
                    with urllib.request.urlopen(f"{self.emulator_url}/_emulator", timeout=2, context=context):
                        return
                except OSError:
                    pass
            time.sleep(0.3)
        raise RuntimeError("the emulator did not answer")

    def emulator_control(self, path: str, body: dict | None = None, method: str = "POST") -> None:
        ca = self.workdir / "var" / "msemulator" / "msemulator-ca.pem"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.emulator_url}/_emulator/{path}", data=data,
                                         headers={"Content-Type": "application/json"}, method=method)
        with urllib.request.urlopen(request, timeout=5, context=ssl.create_default_context(cafile=str(ca))):
            pass

    def __exit__(self, *exc) -> None:
        for name in list(reversed(list(self.processes))):
            self.stop(name)
        if self.external_database_url is None and self.pg_dir.exists():
            self.postgres_stop("immediate")
