"""`make run`: the Microsoft emulator, the demo data, a Celery worker with beat, and the web server.

One command, embedded defaults (SQLite, filesystem broker), every process stopped together.
The order matters on a fresh clone: the emulator creates its CA on first start, and seeding
calls Microsoft through it, so seeding waits for the emulator; the worker and the web server
start after the seed. The web server is gunicorn with threads, as in production (see
docs/decisions/012-make-run-and-bad-input.md). Each process writes its log to var/log/<name>.log; the console
keeps the seed's progress and ends with the sign-in banner once the portal answers.

Each process runs in its own process group, so stopping reaches its children too (gunicorn's
workers, Celery's embedded beat); Ctrl-C or SIGTERM stops the web server first, then the
worker, then the emulator.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management import BaseCommand, CommandError, call_command

from accounts.demo import DEMO_OWNER_EMAIL, DEMO_PASSWORD, DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD

STOP_GRACE_SECONDS = 10
LOG_TAIL_LINES = 25


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path


class Stopped(Exception):
    """Ctrl-C, SIGTERM or a closed terminal: unwind and stop every process."""


class Command(BaseCommand):
    help = "Run the portal with its worker and the local Microsoft emulator."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--emulator-port", type=int, default=8443)
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument("--web-threads", type=int, default=16, help="threads per gunicorn worker")
        parser.add_argument("--no-seed", action="store_true", help="Do not seed the demo organisation.")
        parser.add_argument(
            "--seed-only", action="store_true", help="Start the emulator, seed the demo, stop (for `make seed`)."
        )

    def handle(self, *args, host, port, emulator_port, web_workers, web_threads, no_seed, seed_only, **options):
        var_dir = Path(settings.VAR_DIR)
        self.log_dir = var_dir / "log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        emulator_dir = var_dir / "msemulator"
        emulator_dir.mkdir(parents=True, exist_ok=True)
        emulator_url = f"https://127.0.0.1:{emulator_port}"
        self.env = {**os.environ, "MSEMULATOR_URL": emulator_url, "PYTHONUNBUFFERED": "1"}
        self.children: list[Child] = []

        def on_stop_signal(*_):
            raise Stopped

        # Set explicitly: a shell that starts us in the background leaves SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, on_stop_signal)
        exit_code = 0
        try:
            self._start(
                "emulator",
                [sys.executable, "-m", "msemulator", "--port", str(emulator_port),
                 "--state", str(emulator_dir / "state.sqlite3")],
            )
            self._wait_for_emulator(f"{emulator_url}/_emulator", emulator_dir / "msemulator-ca.pem")
            if not no_seed:
                self._seed(emulator_url)
            if seed_only:
                return
            self._start(
                "worker",
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "--beat",
                 "-Q", "default,provisioning,privacy", "--pool", "threads", "--concurrency", "4",
                 "--loglevel", "info", "--schedule", str(var_dir / "celerybeat-schedule")],
            )
            self._start(
                "web",
                [sys.executable, "-m", "gunicorn", "portal.wsgi:application",
                 "--bind", f"{host}:{port}", "--worker-class", "gthread",
                 "--workers", str(web_workers), "--threads", str(web_threads),
                 "--timeout", "120", "--graceful-timeout", str(STOP_GRACE_SECONDS - 2),
                 "--access-logfile", "-", "--error-logfile", "-", "--no-control-socket"],
            )
            self._wait_for_web(f"http://{host}:{port}/accounts/login/")
            self.stdout.write(self.style.SUCCESS(self._banner(host, port, emulator_url)))
            self.stdout.flush()
            while True:
                for child in self.children:
                    if child.process.poll() is not None:
                        self._report_exit(child)
                        exit_code = 1
                        return
                time.sleep(1)
        except Stopped:
            self.stdout.write("\nStopping …")
        finally:
            self._stop_all()
            if exit_code:
                sys.exit(exit_code)

    # --- processes ---------------------------------------------------------------------------

    def _start(self, name: str, argv: list[str]) -> None:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv[1:])}\n".encode())
            log.flush()
            # process_group=0: its own group, so stopping it reaches its children, and the terminal's
            # Ctrl-C reaches only this command, which stops everything in order.
            process = subprocess.Popen(  # noqa: S603
                argv, env=self.env, cwd=settings.BASE_DIR, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, process_group=0,
            )
        self.children.append(Child(name, process, log_path))
        self.stdout.write(f"started {name} (pid {process.pid}), log: {self._shown(log_path)}")

    def _stop_all(self) -> None:
        # A second Ctrl-C must not interrupt the stopping; a stuck process is killed after the grace period.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        for child in reversed(self.children):
            self._signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{child.name} did not stop within {STOP_GRACE_SECONDS}s; killing it.")
            # Whatever is left of the group (a stuck child of a child) goes too.
            self._signal_group(child, signal.SIGKILL)
            child.process.wait()
        if self.children:
            self.stdout.write("Stopped.")
        self.children.clear()

    @staticmethod
    def _signal_group(child: Child, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signum)

    def _report_exit(self, child: Child) -> None:
        self.stderr.write(
            f"\n{child.name} stopped (exit code {child.process.returncode}); stopping the others. "
            f"Last lines of {self._shown(child.log_path)}:"
        )
        lines = child.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        self.stderr.write("\n".join(f"  | {line}" for line in lines))

    def _shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(settings.BASE_DIR))
        except ValueError:
            return str(path)

    # --- readiness ---------------------------------------------------------------------------

    def _wait(self, check, what: str, child_name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        child = next(c for c in self.children if c.name == child_name)
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                self._report_exit(child)
                raise CommandError(f"{what} did not start.")
            if check():
                return
            time.sleep(0.3)
        raise CommandError(f"{what} did not answer within {timeout:.0f}s; see {self._shown(child.log_path)}.")

    def _wait_for_emulator(self, url: str, ca_path: Path, timeout: float = 60) -> None:
        def answers() -> bool:
            if not ca_path.exists():
                return False
            try:
                context = ssl.create_default_context(cafile=str(ca_path))
                with urllib.request.urlopen(url, timeout=2, context=context):  # noqa: S310
                    return True
            except (OSError, ssl.SSLError):
                return False

        self._wait(answers, f"The Microsoft emulator ({url})", "emulator", timeout)

    def _wait_for_web(self, url: str, timeout: float = 90) -> None:
        def answers() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                    return response.status == 200
            except OSError:  # refused, reset, or an HTTP error status (urllib.error.HTTPError)
                return False

        self._wait(answers, f"The portal ({url})", "web", timeout)

    # --- seed and banner ---------------------------------------------------------------------

    def _seed(self, emulator_url: str) -> None:
        """Seed through the running emulator. Its progress lines are the console's; the Microsoft client's
        request logs (an expected 409 among them) are not: errors still show, and raise."""
        root = logging.getLogger()
        previous = root.level
        root.setLevel(max(previous, logging.ERROR))
        try:
            call_command("seed_demo", emulator_url=emulator_url, stdout=self.stdout, stderr=self.stderr)
        finally:
            root.setLevel(previous)

    def _banner(self, host: str, port: int, emulator_url: str) -> str:
        base = f"http://{host}:{port}"
        rule = "=" * 78
        return (
            f"\n{rule}\n"
            "  The Cloud Licenses Portal is running.\n\n"
            f"  Open              {base}/\n"
            f"  Sign in as        {DEMO_OWNER_EMAIL}   password {DEMO_PASSWORD}\n"
            "                    (also licenses@, billing@ and viewer@fabrikam.example)\n"
            "  Second factor     .venv/bin/python manage.py demo_totp   prints the current code\n\n"
            f"  Staff admin       {base}/admin/\n"
            f"  Sign in as        {DEMO_STAFF_EMAIL}   password {DEMO_STAFF_PASSWORD}\n"
            "  Second factor     .venv/bin/python manage.py demo_totp --staff\n\n"
            f"  API docs          {base}/api/docs/\n"
            f"  Microsoft         {emulator_url} (the local emulator)\n"
            f"  Logs              {self._shown(self.log_dir)}/web.log, worker.log, emulator.log\n\n"
            "  Stop everything with Ctrl-C.\n"
            f"{rule}\n"
        )
