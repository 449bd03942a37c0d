"""Production settings, as a subprocess sees them: DEBUG off, real-looking secrets, no test shortcuts.

`portal/settings.py` switches on DEBUG and on whether pytest is loaded, so the settings a test process
has are not production's. These helpers run `manage.py` in a fresh interpreter with a production-like
environment instead, and read back the settings that matter for hardening.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The settings the hardening tests hold production to, read from the subprocess.
HARDENING_SETTINGS = (
    "DEBUG",
    "PASSWORD_HASHERS",
    "SESSION_COOKIE_NAME",
    "CSRF_COOKIE_NAME",
    "COOKIE_NAME_PREFIX",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SAMESITE",
    "SESSION_COOKIE_AGE",
    "SESSION_IDLE_SECONDS",
    "SESSION_ABSOLUTE_SECONDS",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
    "CONTENT_SECURITY_POLICY",
)


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@cache
def production_env() -> dict[str, str]:
    var = Path(os.environ.get("TMPDIR", "/tmp")) / f"portal-prod-check-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_", "PORTAL_"))}
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "FIELD_ENCRYPTION_MASTER_KEYS": f"prod1:{_key()}",
            "BLIND_INDEX_KEY": _key(),
            "AUDIT_HMAC_KEY": _key(),
            "ALLOWED_HOSTS": "portal.example.com",
            "PORTAL_VAR_DIR": str(var),
        }
    )
    for name in ("BEHIND_TLS_PROXY", "SECURE_COOKIES", "SESSION_COOKIE_AGE", "LOG_FORMAT"):
        env.pop(name, None)  # production's defaults, not whatever the developer's shell has
    return env


def manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@cache
def production_settings() -> dict:
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {HARDENING_SETTINGS!r}}}))"
    )
    result = manage("shell", "-c", code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
