"""Entra ID tokens through msal: app-only per tenant, and App+User for the partner's Admin Agent.

msal does network I/O (OIDC discovery) in the ``ConfidentialClientApplication`` constructor, so
apps are built lazily, one per (authority host, tenant), and reused. Instance discovery is off
(the emulator is not a Microsoft cloud, and the public cloud needs none), and msal gets our own
session with ``trust_env=False`` so ``REQUESTS_CA_BUNDLE`` cannot override the CA bundle
(reference §1.2). One msal cache holds every tenant's tokens; it is shared between workers
through a :class:`~licensing.microsoft.token_store.TokenStore`, read only when memory misses
and written only when msal went to the identity provider.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import msal
import requests

from .errors import AuthenticationFailed, MicrosoftError, TransientFailure, error_from_token_result
from .token_store import TokenStore, merge_caches

PC_SCOPE = "https://api.partnercenter.microsoft.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# A cached access token closer than this to expiry is treated as missing.
EXPIRY_MARGIN_SECONDS = 300
TRANSIENT_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


@dataclass(frozen=True, repr=False)
class AppCredentials:
    """The partner app's credentials, from settings/environment only. ``repr`` hides them."""

    client_id: str
    secret: str = ""
    certificate_private_key: str = ""
    certificate_thumbprint: str = ""

    def msal_credential(self) -> str | dict:
        if self.certificate_private_key:
            return {"private_key": self.certificate_private_key, "thumbprint": self.certificate_thumbprint}
        if self.secret:
            return self.secret
        raise AuthenticationFailed("No Microsoft app credential configured (MS_CLIENT_SECRET or a certificate).")

    def __repr__(self) -> str:
        return f"AppCredentials(client_id={self.client_id!r})"


class TokenProvider:
    def __init__(
        self,
        *,
        authority_host: str,
        credentials: AppCredentials,
        partner_tenant_id: str,
        session: requests.Session,
        store: TokenStore,
        timeout: float,
        admin_agent_refresh_token: str = "",
    ):
        self.authority_host = authority_host.rstrip("/")
        self.credentials = credentials
        self.partner_tenant_id = partner_tenant_id
        self.session = session
        self.store = store
        self.timeout = timeout
        self._admin_agent_refresh_token = admin_agent_refresh_token
        self._cache = msal.SerializableTokenCache()
        self._store_version: int | None = None
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._lock = threading.RLock()

    # -- public ---------------------------------------------------------------------------
    def app_token(self, *, tenant_id: str, scope: str) -> str:
        """App-only token (client credentials) for ``scope`` in ``tenant_id``."""
        with self._lock:
            if not self._has_valid_app_token(tenant_id, scope):
                self._reload()
            app = self._app(tenant_id)
            result = self._call(tenant_id, lambda: app.acquire_token_for_client(scopes=[scope]))
            return self._finish(result, tenant_id)

    def user_token(self, *, tenant_id: str, scope: str) -> str:
        """App+User token as the Admin Agent (Secure Application Model): silent from the shared cache,
        bootstrapped once from ``MS_ADMIN_AGENT_REFRESH_TOKEN`` when the cache has no account yet."""
        with self._lock:
            app = self._app(tenant_id)
            accounts = app.get_accounts()
            if not accounts:
                self._reload(force=True)
                accounts = app.get_accounts()
            if accounts:
                result = self._call(tenant_id, lambda: app.acquire_token_silent([scope], account=accounts[0]))
                if result:
                    return self._finish(result, tenant_id)
            if not self._admin_agent_refresh_token:
                raise AuthenticationFailed(
                    "The Admin Agent has not signed in: App+User calls need a completed sign-in "
                    "(begin_admin_agent_sign_in) or MS_ADMIN_AGENT_REFRESH_TOKEN."
                )
            token = self._admin_agent_refresh_token
            result = self._call(tenant_id, lambda: app.acquire_token_by_refresh_token(token, scopes=[scope]))
            return self._finish(result, tenant_id)

    def begin_admin_agent_sign_in(self, *, redirect_uri: str, login_hint: str | None = None) -> dict:
        """Start the one-time Admin Agent sign-in (auth-code flow, MFA at Microsoft). Keep the
        returned flow in the staff member's session and pass it to :meth:`complete_admin_agent_sign_in`."""
        app = self._app(self.partner_tenant_id)
        return app.initiate_auth_code_flow([PC_SCOPE], redirect_uri=redirect_uri, login_hint=login_hint)

    def complete_admin_agent_sign_in(self, *, flow: dict, auth_response: dict) -> None:
        with self._lock:
            app = self._app(self.partner_tenant_id)
            result = self._call(
                self.partner_tenant_id, lambda: app.acquire_token_by_auth_code_flow(flow, auth_response)
            )
            self._finish(result, self.partner_tenant_id)

    # -- internals ------------------------------------------------------------------------
    def _app(self, tenant_id: str) -> msal.ConfidentialClientApplication:
        with self._lock:
            app = self._apps.get(tenant_id)
            if app is None:
                app = self._call(
                    tenant_id,
                    lambda: msal.ConfidentialClientApplication(
                        self.credentials.client_id,
                        client_credential=self.credentials.msal_credential(),
                        authority=f"{self.authority_host}/{tenant_id}",
                        instance_discovery=False,
                        http_client=self.session,
                        token_cache=self._cache,
                        timeout=self.timeout,
                    ),
                )
                self._apps[tenant_id] = app
            return app

    def _call(self, tenant_id: str, fn):
        try:
            return fn()
        except MicrosoftError:
            raise
        except requests.RequestException as exc:
            raise TransientFailure(
                f"Identity provider unreachable for tenant {tenant_id}: {type(exc).__name__}"
            ) from None
        except ValueError as exc:
            # msal raises ValueError when discovery fails (tenant unknown, endpoint down).
            raise AuthenticationFailed(f"Authority configuration for tenant {tenant_id} unavailable: {exc}") from None

    def _finish(self, result: dict | None, tenant_id: str) -> str:
        if not result or "access_token" not in result:
            result = result or {"error": "no_token"}
            if result.get("error") in TRANSIENT_TOKEN_ERRORS:
                raise TransientFailure(f"Identity provider error for tenant {tenant_id}: {result['error']}")
            raise error_from_token_result(result, tenant_id=tenant_id)
        if result.get("token_source") == "identity_provider" or self._cache.has_state_changed:
            self._persist()
        return result["access_token"]

    def _has_valid_app_token(self, tenant_id: str, scope: str) -> bool:
        horizon = time.time() + EXPIRY_MARGIN_SECONDS
        entries = self._cache.search(
            msal.TokenCache.CredentialType.ACCESS_TOKEN,
            target=[scope],
            query={"client_id": self.credentials.client_id, "realm": tenant_id},
        )
        return any(int(entry.get("expires_on", 0)) > horizon for entry in entries)

    def _reload(self, force: bool = False) -> None:
        snapshot = self.store.load()
        if snapshot.blob and (force or snapshot.version != self._store_version):
            merged = merge_caches(snapshot.blob, self._cache.serialize())
            self._cache.deserialize(merged)
            self._store_version = snapshot.version

    def _persist(self) -> None:
        snapshot = self.store.merge_save(self._cache.serialize())
        if snapshot.blob:
            self._cache.deserialize(snapshot.blob)
        self._store_version = snapshot.version
        self._cache.has_state_changed = False
