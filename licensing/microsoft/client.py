"""The facade the rest of the portal uses: ``default_client().partner_center`` / ``.graph``.

Everything comes from settings, so switching between the emulator and Microsoft is configuration
only (MS_AUTHORITY_HOST, MS_PARTNER_CENTER_URL, MS_GRAPH_URL, MS_CA_BUNDLE and the credentials).
Nothing here does network I/O until the first call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from .auth import AppCredentials, TokenProvider
from .downloads import MicrosoftDownloads, product_names_url
from .graph import Graph
from .http import MicrosoftHttp, build_session
from .partner_center import PartnerCenter
from .token_store import TokenStore, default_store


@dataclass
class MicrosoftClient:
    partner_center: PartnerCenter
    graph: Graph  # app-only into each customer tenant (needs application consent)
    graph_as_admin_agent: Graph  # App+User over GDAP
    tokens: TokenProvider
    http: MicrosoftHttp
    downloads: MicrosoftDownloads | None = None  # Microsoft's public files (product and plan names)

    @classmethod
    def for_settings(
        cls,
        *,
        store: TokenStore | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] | None = None,
    ) -> MicrosoftClient:
        session = build_session(settings.MS_CA_BUNDLE)
        credentials = AppCredentials(
            client_id=settings.MS_CLIENT_ID,
            secret=settings.MS_CLIENT_SECRET,
            certificate_private_key=_read(settings.MS_CLIENT_CERTIFICATE_KEY_PATH),
            certificate_thumbprint=settings.MS_CLIENT_CERTIFICATE_THUMBPRINT,
        )
        tokens = TokenProvider(
            authority_host=settings.MS_AUTHORITY_HOST,
            credentials=credentials,
            partner_tenant_id=settings.MS_PARTNER_TENANT_ID,
            session=session,
            store=store or default_store(),
            timeout=settings.MS_HTTP_TIMEOUT,
            admin_agent_refresh_token=settings.MS_ADMIN_AGENT_REFRESH_TOKEN,
        )
        http_kwargs = {"jitter": jitter} if jitter else {}
        http = MicrosoftHttp(
            session=session,
            timeout=settings.MS_HTTP_TIMEOUT,
            retry_budget=settings.MS_RETRY_BUDGET,
            sleep=sleep,
            clock=clock,
            **http_kwargs,
        )
        partner_center = PartnerCenter(
            http=http,
            base_url=settings.MS_PARTNER_CENTER_URL,
            tokens=tokens,
            partner_tenant_id=settings.MS_PARTNER_TENANT_ID,
            client_id=settings.MS_CLIENT_ID,
            pricing_url=settings.MS_PRICING_URL or None,
        )
        graph_kwargs = {
            "http": http,
            "base_url": settings.MS_GRAPH_URL,
            "tokens": tokens,
            "partner_tenant_id": settings.MS_PARTNER_TENANT_ID,
            "sleep": sleep,
        }
        return cls(
            partner_center=partner_center,
            graph=Graph(auth="app", **graph_kwargs),
            graph_as_admin_agent=Graph(auth="user", **graph_kwargs),
            tokens=tokens,
            http=http,
            downloads=MicrosoftDownloads(
                http=http,
                product_names_url=settings.MS_PRODUCT_NAMES_URL or product_names_url(settings.MS_AUTHORITY_HOST),
            ),
        )


def _read(path: str) -> str:
    if not path:
        return ""
    with open(path, encoding="utf-8") as handle:
        return handle.read()


_default: MicrosoftClient | None = None
_default_lock = threading.Lock()


def default_client() -> MicrosoftClient:
    """One client per process: msal apps, the token cache and the connection pool are reused."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MicrosoftClient.for_settings()
        return _default


def reset_default_client() -> None:
    """Forget the process client (tests that change MS_* settings; settings reload)."""
    global _default
    with _default_lock:
        _default = None
