"""The one HTTP transport to Partner Center and Graph: timeouts, retries, idempotency headers, logs.

Every logical operation carries one ``MS-RequestId`` (Partner Center's idempotency key) and one
``MS-CorrelationId``; both are sent unchanged on every attempt, so a retried checkout or a
redelivered task replays the first response instead of buying twice. Retries cover 429, 5xx,
timeouts and connection errors, with exponential backoff and full jitter, and never sooner than
the server's ``Retry-After``. Log lines carry method, path, status, duration and the two ids:
never tokens, bodies, query strings or e-mail addresses.

A request that failed without an answer (timeout, connection reset or closed, as a stale pooled
keep-alive connection does) is sent again only when that is safe: when no byte of it can have
reached the server (the TCP connection was never made), when its method is idempotent (RFC 9110
§9.2.2), or when the server de-duplicates it by its ``MS-RequestId`` (Partner Center; the caller
says so with ``replay_safe``). Anything else, a Graph POST say, raises ``OutcomeUnknown`` at once:
the caller must look before trying again. This is the rule of Go's net/http for reused connections
and of urllib3's default Retry (docs/decisions/020).
"""

from __future__ import annotations

import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError, ProtocolError

from core.metrics import MICROSOFT_SECONDS, MICROSOFT_THROTTLED, status_class

from .errors import MicrosoftError, OutcomeUnknown, TransientFailure, error_from_response, parse_retry_after

logger = logging.getLogger("licensing.microsoft.http")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
CONNECT_TIMEOUT_CAP = 5.0


def build_session(ca_bundle: str | None, pool_size: int = 20) -> requests.Session:
    """A session that ignores proxy/CA environment variables (REQUESTS_CA_BUNDLE would silently
    override ``verify``, reference §1.2) and trusts exactly the configured bundle, or the system
    store when none is configured."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_bundle if ca_bundle and os.path.exists(ca_bundle) else True
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def api_of(path: str) -> str:
    """Which Microsoft API a (loggable) path belongs to, for metric labels."""
    if path.startswith(("/v1.0/", "/beta/")) or "/graph/" in path:
        return "graph"
    if "/oauth2/" in path or path.endswith("/.well-known/openid-configuration"):
        return "identity"
    return "partner_center"


def loggable_path(url: str) -> str:
    """The URL path without query string, with e-mail-like segments (UPNs) and domain names masked."""
    segments = urlsplit(url).path.split("/")
    masked = []
    previous = ""
    for segment in segments:
        if "@" in segment or "%40" in segment.lower():
            masked.append("{upn}")
        elif previous == "domains" and segment:
            masked.append("{domain}")
        else:
            masked.append(segment)
        previous = segment
    return "/".join(masked)


class MicrosoftHttp:
    def __init__(
        self,
        *,
        session: requests.Session,
        timeout: float,
        retry_budget: int,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 120.0,
    ):
        self.session = session
        self.timeout = (min(CONNECT_TIMEOUT_CAP, timeout), timeout)
        self.retry_budget = max(1, retry_budget)
        self.sleep = sleep
        self.clock = clock
        self.jitter = jitter
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        # A Retry-After longer than this is not slept through in a worker: the typed error carries
        # it so the task can reschedule itself instead of holding the worker.
        self.max_retry_after = max_retry_after

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)] (attempt counts from 1)."""
        return self.jitter() * min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))

    def request(
        self,
        method: str,
        url: str,
        *,
        token: Callable[[], str] | None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        correlation_id: str | None = None,
        stream: bool = False,
        replay_safe: bool | None = None,
    ) -> requests.Response:
        """Perform one logical operation; return the successful response or raise a MicrosoftError.

        ``request_id`` must be supplied by callers of writes, stored with the operation, so that a
        task redelivered after a crash reuses it. ``token`` is called before every attempt (msal serves
        it from cache) so a long backoff never sends an expired token. ``replay_safe`` says whether a
        request that got no answer may be sent again (default: its method is idempotent).
        """
        if replay_safe is None:
            replay_safe = method.upper() in IDEMPOTENT_METHODS
        request_id = request_id or str(uuid.uuid4())
        correlation_id = correlation_id or str(uuid.uuid4())
        path = loggable_path(url)
        last_error: MicrosoftError | None = None
        for attempt in range(1, self.retry_budget + 1):
            send_headers = {
                "Accept": "application/json",
                "MS-RequestId": request_id,
                "MS-CorrelationId": correlation_id,
                "client-request-id": request_id,
                **(headers or {}),
            }
            if token is not None:
                send_headers["Authorization"] = f"Bearer {token()}"
            started = self.clock()
            try:
                response = self.session.request(
                    method, url, json=json, params=params, headers=send_headers, timeout=self.timeout, stream=stream
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                kind = "timeout" if isinstance(exc, requests.Timeout) else "connection_error"
                self._log(method, path, kind, started, attempt, request_id, correlation_id)
                if not (replay_safe or never_sent(exc)):
                    raise OutcomeUnknown(
                        f"{kind.replace('_', ' ')} calling Microsoft; the request may have been carried out"
                        " and was not sent again",
                        request_id=request_id,
                        correlation_id=correlation_id,
                    ) from exc
                last_error = TransientFailure(
                    f"{kind.replace('_', ' ')} calling Microsoft",
                    request_id=request_id,
                    correlation_id=correlation_id,
                )
                # A pooled connection the server had closed fails at once and says nothing about the
                # server: the pool opens a new one, so the first such failure is retried without waiting.
                delay = 0.0 if attempt == 1 and stale_connection(exc) else self.backoff(attempt)
            else:
                self._log(method, path, response.status_code, started, attempt, request_id, correlation_id)
                if response.status_code < 400:
                    return response
                error = error_from_response(
                    status=response.status_code,
                    body=_json_or_none(response),
                    headers=response.headers,
                    request_id=request_id,
                    correlation_id=correlation_id,
                    reason=response.reason or "",
                )
                response.close()
                if response.status_code not in RETRYABLE_STATUSES:
                    raise error
                last_error = error
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is not None and retry_after > self.max_retry_after:
                    raise error
                delay = retry_after if retry_after is not None else self.backoff(attempt)
            if attempt < self.retry_budget:
                self.sleep(delay)
        # Only Throttled or TransientFailure reach here: everything else was raised at once.
        assert last_error is not None
        raise last_error

    def _log(self, method, path, status, started, attempt, request_id, correlation_id) -> None:
        elapsed = self.clock() - started
        duration_ms = round(elapsed * 1000, 1)
        api = api_of(path)
        MICROSOFT_SECONDS.labels(api, status_class(status)).observe(max(elapsed, 0.0))
        if status == 429:
            MICROSOFT_THROTTLED.labels(api).inc()
        level = logging.INFO if isinstance(status, int) and status < 400 else logging.WARNING
        logger.log(
            level,
            "microsoft %s %s status=%s duration_ms=%s attempt=%s request_id=%s correlation_id=%s",
            method,
            path,
            status,
            duration_ms,
            attempt,
            request_id,
            correlation_id,
            extra={
                "ms_method": method,
                "ms_path": path,
                "ms_status": status,
                "ms_duration_ms": duration_ms,
                "ms_attempt": attempt,
                "ms_request_id": request_id,
                "ms_correlation_id": correlation_id,
            },
        )


def _reason(exc: requests.RequestException) -> BaseException | None:
    inner = exc.args[0] if exc.args else None
    return getattr(inner, "reason", inner)


def never_sent(exc: requests.RequestException) -> bool:
    """The request cannot have reached the server: connecting (DNS or TCP) failed. A TLS error is not
    counted: a reset pooled connection can surface as one after the request was written."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    return isinstance(_reason(exc), (NewConnectionError, NameResolutionError))


def stale_connection(exc: requests.RequestException) -> bool:
    """The connection ended without an answer (closed or reset by the peer), as a stale one does."""
    return isinstance(exc, requests.ConnectionError) and isinstance(_reason(exc), ProtocolError)


def _json_or_none(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return None
