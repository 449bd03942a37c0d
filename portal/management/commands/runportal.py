"""`make run`: the Microsoft emulator, the demo data, a Celery worker with beat, and the web server.

One command, embedded defaults (SQLite, filesystem broker), every process stopped together.
"""

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import BaseCommand, call_command

from accounts.demo import DEMO_OWNER_EMAIL, DEMO_PASSWORD


class Command(BaseCommand):
    help = "Run the portal with its worker and the local Microsoft emulator."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--emulator-port", type=int, default=8443)
        parser.add_argument("--no-seed", action="store_true", help="Do not seed the demo organisation.")

    def handle(self, *args, port, emulator_port, no_seed, **options):
        emulator_dir = Path(settings.VAR_DIR) / "msemulator"
        emulator_dir.mkdir(parents=True, exist_ok=True)
        emulator_url = f"https://127.0.0.1:{emulator_port}"
        env = {**os.environ, "MSEMULATOR_URL": emulator_url, "PYTHONUNBUFFERED": "1"}
        processes: list[subprocess.Popen] = []

        def start(name, argv):
            self.stdout.write(f"starting {name}: {' '.join(argv[1:4])} …")
            processes.append(subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR))  # noqa: S603

        def stop_all(*_):
            for process in reversed(processes):
                if process.poll() is None:
                    process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()

        signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(0)))
        try:
            start(
                "Microsoft emulator",
                [sys.executable, "-m", "msemulator", "--port", str(emulator_port),
                 "--state", str(emulator_dir / "state.sqlite3")],
            )
            self._wait_for(f"{emulator_url}/_emulator", emulator_dir / "msemulator-ca.pem")
            if not no_seed:
                call_command("seed_demo", emulator_url=emulator_url)
            start(
                "Celery worker + beat",
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "--beat",
                 "-Q", "default,provisioning,privacy", "--pool", "threads", "--concurrency", "4",
                 "--loglevel", "info", "--schedule", str(Path(settings.VAR_DIR) / "celerybeat-schedule")],
            )
            start("web", [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"])
            self.stdout.write(self.style.SUCCESS(self._banner(port, emulator_url)))
            while all(process.poll() is None for process in processes):
                time.sleep(1)
            self.stderr.write("A process stopped; shutting the others down.")
        except KeyboardInterrupt:
            pass
        finally:
            stop_all()

    def _wait_for(self, url, ca_path, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                context = ssl.create_default_context(cafile=str(ca_path)) if ca_path.exists() else None
                if context is not None:
                    with urllib.request.urlopen(url, timeout=2, context=context):  # noqa: S310
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"The Microsoft emulator did not answer at {url} within {timeout}s.")

    def _banner(self, port, emulator_url):
        return (
            "\n"
            f"  Cloud Licenses Portal:  http://127.0.0.1:{port}/\n"
            f"  Sign in as:             {DEMO_OWNER_EMAIL} / {DEMO_PASSWORD}\n"
            "  Second factor:          run `.venv/bin/python manage.py demo_totp` for the current code\n"
            "                          (or add the secret it prints to an authenticator app)\n"
            f"  API docs:               http://127.0.0.1:{port}/api/docs/\n"
            f"  Microsoft emulator:     {emulator_url}\n"
            "  Stop with Ctrl-C.\n"
        )
