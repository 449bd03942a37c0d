"""The browser's own record of its opt-out: a signed cookie, so it holds without an account.

The value is ``{"b": browser id, "d": date made, "m": method}``, signed with the project key so a
page cannot be tricked into showing a date or method the server never recorded. It is strictly
necessary (it is the opt-out itself), HttpOnly, and lasts two years; deleting it only loses the
anonymous opt-out, and the next GPC request records it again.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core import signing

COOKIE_NAME = "privacy_optout"  # sent as settings.COOKIE_NAME_PREFIX + this ("__Host-" over HTTPS)
COOKIE_SALT = "privacy.optout"
COOKIE_MAX_AGE = 2 * 365 * 24 * 3600


def read(request) -> tuple[str, datetime.date, str] | None:
    raw = request.COOKIES.get(settings.COOKIE_NAME_PREFIX + COOKIE_NAME)
    if not raw:
        return None
    try:
        value = signing.loads(raw, salt=COOKIE_SALT)
        return str(value["b"]), datetime.date.fromisoformat(value["d"]), str(value["m"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def write(response, *, browser_id: str, since: datetime.date, method: str) -> None:
    response.set_cookie(
        settings.COOKIE_NAME_PREFIX + COOKIE_NAME,
        signing.dumps({"b": browser_id, "d": since.isoformat(), "m": method}, salt=COOKIE_SALT, compress=True),
        max_age=COOKIE_MAX_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
