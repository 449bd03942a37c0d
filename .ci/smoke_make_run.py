#!/usr/bin/env python3
"""CI smoke of the README's `make run` on a clean clone, on the embedded defaults.

1. Clone the checkout's HEAD into a temporary folder: no var/, no database, no emulator CA.
2. `make run` there, with DATABASE_URL and REDIS_URL unset and free ports, in its own session.
3. Wait for the sign-in page, then sign in over HTTP as the demo owner: password, then the TOTP
   code that `manage.py demo_totp` prints. Load the organisation's overview.
4. Fire 40 concurrent API requests at the web server: every one must be answered 200.
5. Check the sign-in banner is the last thing printed, then stop `make run` as Ctrl-C would and
   check that every process it started (anything in its session) is gone.

The Python environment is the checkout's .venv, which `make test` has just installed (or
SMOKE_VENV): the clone's .venv links to it, so this proves the clone's first run, not pip.
Bounded: each wait has a deadline, and the whole run stops after SMOKE_TIMEOUT seconds (300).
Only the standard library: it runs before or without the project's packages.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = float(os.environ.get("SMOKE_TIMEOUT", "300"))
CONCURRENT_REQUESTS = 40
DEMO_EMAIL = "owner@fabrikam.example"
DEMO_PASSWORD = "demo-portal-2026"
ORG = "fabrikam"
BANNER_END = "Stop everything with Ctrl-C."
STARTED = time.monotonic()


class SmokeFailure(Exception):
    pass


def log(message: str) -> None:
    print(f"[smoke {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def remaining(cap: float) -> float:
    left = TIMEOUT - (time.monotonic() - STARTED)
    if left <= 0:
        raise SmokeFailure(f"the smoke ran past its {TIMEOUT:.0f}s budget")
    return min(cap, left)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_clone(workdir: Path) -> Path:
    clone = workdir / "portal"
    if (ROOT / ".git").exists():
        # The committed tree, as a newcomer's clone would have it.
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)  # noqa: S603, S607
    else:  # an exported tree without git: copy it without what a run or the tests leave behind
        shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns("var", ".venv", "__pycache__", ".pytest_cache"))
    if (clone / "var").exists():
        raise SmokeFailure("the clone has a var/ folder: it is not clean")
    venv = Path(os.environ.get("SMOKE_VENV", ROOT / ".venv")).resolve()
    stamp = venv / ".installed"
    if not stamp.exists():
        raise SmokeFailure(f"no installed environment at {venv} (run `make install` or `make test` first)")
    (clone / ".venv").symlink_to(venv)
    # The environment is installed already: make's install stamp must not look older than the clone's files.
    for name in ("requirements.txt", "requirements-dev.txt"):
        os.utime(clone / name, (stamp.stat().st_mtime, stamp.stat().st_mtime))
    return clone


def start_make_run(clone: Path, port: int, emulator_port: int, output: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "PORTAL_VAR_DIR")}
    env["PYTHONUNBUFFERED"] = "1"
    argv = ["make", "run", f"PORT={port}", f"EMULATOR_PORT={emulator_port}"]
    log(f"{' '.join(argv)} in {clone} (no DATABASE_URL, no REDIS_URL)")
    with output.open("wb") as out:
        return subprocess.Popen(  # noqa: S603
            argv, cwd=clone, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_sign_in_page(base: str, make: subprocess.Popen, output: Path) -> None:
    deadline = time.monotonic() + remaining(240)
    while time.monotonic() < deadline:
        if make.poll() is not None:
            raise SmokeFailure(f"make run exited with {make.returncode} before the portal answered")
        try:
            with urllib.request.urlopen(f"{base}/accounts/login/", timeout=5) as response:  # noqa: S310
                if response.status == 200 and BANNER_END in output.read_text(errors="replace"):
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SmokeFailure("the sign-in page did not answer (with the banner printed) in time")


class Browser:
    """Cookies, CSRF tokens and redirects, as a browser would handle them."""

    def __init__(self, base: str):
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str, headers: dict | None = None) -> tuple[int, str, str]:
        request = urllib.request.Request(self.base + path, headers=headers or {})  # noqa: S310  (http only)
        with self.opener.open(request, timeout=remaining(30)) as response:
            return response.status, response.geturl(), response.read().decode("utf-8", "replace")

    def post_form(self, path: str, page: str, fields: dict) -> tuple[int, str, str]:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if not token:
            raise SmokeFailure(f"no CSRF token in the form at {path}")
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), **fields}).encode()
        request = urllib.request.Request(  # noqa: S310  (http only)
            self.base + path, data=data, headers={"Referer": self.base + path}
        )
        with self.opener.open(request, timeout=remaining(30)) as response:
            return response.status, response.geturl(), response.read().decode("utf-8", "replace")

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.cookies)


def demo_totp(clone: Path) -> str:
    result = subprocess.run(  # noqa: S603
        [str(clone / ".venv" / "bin" / "python"), "manage.py", "demo_totp", "--code-only"],
        cwd=clone, capture_output=True, text=True, check=True, timeout=remaining(60),
        env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
    )
    code = result.stdout.strip().splitlines()[-1]
    if not re.fullmatch(r"\d{6}", code):
        raise SmokeFailure(f"demo_totp printed {result.stdout!r}, not a code")
    return code


def sign_in_and_load_overview(base: str, clone: Path) -> Browser:
    browser = Browser(base)
    _, _, page = browser.get("/accounts/login/")
    status, url, page = browser.post_form(
        "/accounts/login/", page, {"username": DEMO_EMAIL, "password": DEMO_PASSWORD}
    )
    if "/accounts/mfa/verify/" not in url:
        raise SmokeFailure(f"after the password the portal went to {url} ({status}), not the second factor")
    log("password accepted; entering the code from `manage.py demo_totp`")
    path = urllib.parse.urlsplit(url).path
    status, url, page = browser.post_form(path, page, {"code": demo_totp(clone)})
    if "/accounts/" in urllib.parse.urlsplit(url).path:
        raise SmokeFailure(f"the TOTP code was not accepted: still at {url} ({status})")
    status, url, page = browser.get(f"/o/{ORG}/")
    if status != 200 or "Fabrikam" not in page or "<h1" not in page:
        raise SmokeFailure(f"the overview did not load: {url} ({status})")
    log(f"signed in as {DEMO_EMAIL} and loaded the overview ({url})")
    return browser


def concurrent_api_requests(base: str, browser: Browser) -> None:
    headers = {"Cookie": browser.cookie_header(), "X-Organization": ORG, "Accept": "application/json"}

    def one(_):
        request = urllib.request.Request(f"{base}/api/v1/subscriptions/", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                json.loads(response.read())
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError as exc:  # a dropped or refused connection
            return f"{type(exc).__name__}: {exc}"

    with concurrent.futures.ThreadPoolExecutor(CONCURRENT_REQUESTS) as pool:
        results = list(pool.map(one, range(CONCURRENT_REQUESTS)))
    failed = [r for r in results if r != 200]
    if failed:
        raise SmokeFailure(f"{len(failed)} of {CONCURRENT_REQUESTS} concurrent API requests failed: {failed[:5]}")
    log(f"{CONCURRENT_REQUESTS} concurrent API requests: all 200")


def banner_is_last(output: Path) -> None:
    text = output.read_text(errors="replace").rstrip()
    if not text.endswith("=" * 78) or BANNER_END not in text.splitlines()[-2]:
        tail = "\n".join(text.splitlines()[-5:])
        raise SmokeFailure(f"the sign-in banner is not the last thing make run printed; it ends with:\n{tail}")
    log("the sign-in banner is the last thing on the console")


def session_processes(sid: int) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry.name}: {cmdline.strip()}")
        except (OSError, IndexError, ValueError):
            continue
    return found


def stop_and_check(make: subprocess.Popen) -> None:
    sid = make.pid  # start_new_session: make leads its own session, and everything it starts stays in it
    started = session_processes(sid)
    log(f"make run's session holds {len(started)} processes; stopping it as Ctrl-C does")
    os.killpg(make.pid, signal.SIGINT)
    try:
        make.wait(timeout=remaining(60))
    except subprocess.TimeoutExpired as exc:
        raise SmokeFailure("make run did not stop within 60s of Ctrl-C") from exc
    deadline = time.monotonic() + 15
    left = session_processes(sid)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = session_processes(sid)
    if left:
        for line in left:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        raise SmokeFailure("processes started by make run outlived it:\n  " + "\n  ".join(left))
    log(f"make run stopped (exit {make.returncode}); none of its {len(started)} processes is left")


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="smoke-make-run-"))
    output = workdir / "make-run.log"
    make = None
    try:
        clone = clean_clone(workdir)
        port, emulator_port = free_port(), free_port()
        base = f"http://127.0.0.1:{port}"
        make = start_make_run(clone, port, emulator_port, output)
        wait_for_sign_in_page(base, make, output)
        log(f"the sign-in page answers at {base}/accounts/login/")
        browser = sign_in_and_load_overview(base, clone)
        concurrent_api_requests(base, browser)
        banner_is_last(output)
        stop_and_check(make)
        make = None
        print("SMOKE PASSED: make run on a clean clone starts, signs in with TOTP, serves 40 concurrent "
              "requests and stops cleanly", flush=True)
        return 0
    except (SmokeFailure, subprocess.CalledProcessError, OSError) as exc:
        print(f"SMOKE FAILED: {exc}", flush=True)
        if output.exists():
            print("---- make run output (last 60 lines) ----")
            print("\n".join(output.read_text(errors="replace").splitlines()[-60:]))
        for name in ("web", "worker", "emulator"):
            path = workdir / "portal" / "var" / "log" / f"{name}.log"
            if path.exists():
                print(f"---- {name}.log (last 30 lines) ----")
                print("\n".join(path.read_text(errors="replace").splitlines()[-30:]))
        return 1
    finally:
        if make is not None and make.poll() is None:
            for signum in (signal.SIGTERM, signal.SIGKILL):
                for line in session_processes(make.pid):
                    with contextlib.suppress(OSError):
                        os.kill(int(line.split(":")[0]), signum)
                time.sleep(2)
        if os.environ.get("SMOKE_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
