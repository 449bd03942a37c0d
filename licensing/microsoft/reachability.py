"""Can this process reach Microsoft (or the emulator)? For the staff status page; no credentials used.

One unauthenticated GET per endpoint with a short timeout: the identity platform's OpenID
discovery document, and the Partner Center and Graph base URLs (any HTTP answer below 500,
401 included, means the service is there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests
from django.conf import settings

from .http import build_session


@dataclass(frozen=True)
class Reachability:
    name: str
    url: str
    reachable: bool
    status: int | None
    milliseconds: float | None
    problem: str = ""


def microsoft_reachability(*, timeout: float = 3.0) -> list[Reachability]:
    session = build_session(settings.MS_CA_BUNDLE, pool_size=3)
    targets = [
        ("Entra ID", f"{settings.MS_AUTHORITY_HOST.rstrip('/')}/common/v2.0/.well-known/openid-configuration"),
        ("Partner Center", settings.MS_PARTNER_CENTER_URL.rstrip("/") + "/v1/"),
        ("Microsoft Graph", settings.MS_GRAPH_URL.rstrip("/") + "/v1.0/"),
    ]
    results = []
    for name, url in targets:
        started = time.perf_counter()
        try:
            response = session.get(url, timeout=timeout)
            response.close()
        except (requests.RequestException, OSError) as exc:
            results.append(Reachability(name, url, False, None, None, type(exc).__name__))
            continue
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        results.append(Reachability(name, url, response.status_code < 500, response.status_code, elapsed))
    session.close()
    return results
