"""The WSGI application: routing, authentication per API, fault injection, MS-RequestId
idempotency, header echoing and the request log.

URL layout (one host): `/{tenant}/...` Entra ID, `/partnercenter/v1/...` Partner Center,
`/graph/v1.0/...` Graph, `/blobs/...` export blobs, `/download/...` Microsoft's public files,
`/_emulator/...` control API."""

import errno
import json
import os
import time
import uuid

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from . import control, downloads, gdap, graph, identity, partner_center
from .catalog import load_catalog
from .config import PartnerConfig
from .context import Context
from .faults import FaultInjector
from .partner_center import nce
from .responses import ApiError, entra_error, graph_error, json_response, pc_error
from .seed import seed
from .state import State
from .throttling import Throttle, Throttling

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
REDACTED = "***"
# The Microsoft Graph first-party application id, named in its WWW-Authenticate challenge.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# What the server (msemulator.server) tells the app about the connection a request came on: a
# callable that ends it without an answer (reset=True: with an RST), and how long it idled.
CLOSE_KEY = "msemulator.close_connection"
IDLE_KEY = "msemulator.connection_idle_seconds"


def api_of(path: str) -> str:
    for prefix, api in (("/partnercenter/", "pc"), ("/graph/", "graph"), ("/_emulator", "control"),
                        ("/blobs/", "blob"), ("/download/", "download")):
        if path.startswith(prefix):
            return api
    return "identity"


SECRET_KEYS = frozenset({"password", "newpassword", "currentpassword"})


def _redact_json(body: str) -> str:
    """A logged JSON body without the passwords in it (passwordProfile.password, $batch bodies)."""
    def scrub(value):
        if isinstance(value, dict):
            return {k: (REDACTED if k.lower() in SECRET_KEYS else scrub(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    try:
        return json.dumps(scrub(json.loads(body)))
    except ValueError:
        return REDACTED


class ConnectionDropped(ConnectionAbortedError):
    """Raised after closing or resetting the client socket; the server ignores it as a connection
    the peer dropped (ECONNABORTED is one of the errors it does not log) and writes nothing."""

    def __init__(self, message: str):
        super().__init__(errno.ECONNABORTED, message)


class EmulatorApp:
    def __init__(self, state_path: str, partner: PartnerConfig | None = None):
        self.partner = partner or PartnerConfig.from_env()
        self.catalog = load_catalog()
        self.state = State(state_path)
        self.faults = FaultInjector()
        self.throttling = Throttling(self._tenant_users)
        # Unbound copies: a Rule binds to one Map for good, and a process may run several emulators.
        self.url_map = Map([rule.empty() for rule in identity.ROUTES + partner_center.ROUTES + graph.ROUTES
                            + gdap.ROUTES + control.ROUTES + downloads.ROUTES])
        self.control_token = os.environ.get("MSEMULATOR_CONTROL_TOKEN")
        if not self.state.meta("seeded"):
            seed(self.state, self.catalog, self.partner)

    def __call__(self, environ, start_response):
        request = Request(environ)
        response = self.handle(request, environ=environ)
        return response(environ, start_response)

    def _tenant_users(self, tenant_id: str) -> int:
        return self.state.row("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ?", (tenant_id,))["n"]

    def settle(self, now) -> None:
        with self.state.transaction():
            nce.settle(self.state, self.catalog, now)
            gdap.settle(self.state, now)

    # -- request handling --------------------------------------------------------------------
    def handle(self, request: Request, *, inner: bool = False, environ=None) -> Response:
        api = api_of(request.path)
        if api != "control":
            fault = self._inject(request, api, inner=inner, environ=environ)
            if fault is not None:
                self._echo_headers(request, fault, api)
                self._log(request, fault.status_code)
                return fault
        response = self._route(request, api)
        self._echo_headers(request, response, api)
        if api != "control":
            self._log(request, response.status_code)
        return response

    def _inject(self, request: Request, api: str, *, inner: bool, environ) -> Response | None:
        throttle = self.throttling.check(request, api, self.state.now().timestamp())
        if throttle is not None:
            return self._throttled(api, throttle)
        wait = self.faults.throttle(request.method, request.path)
        if wait is not None:
            return self._fault_response(api, 429, wait)
        idle = None if inner or environ is None else environ.get(IDLE_KEY)
        rule = self.faults.pick(request.method, request.path, idle=idle)
        if rule is None:
            return None
        if rule.kind == "idle_reset":
            self._drop(environ, reset=True)
        if rule.kind == "status":
            return self._fault_response(api, rule.status, rule.retry_after)
        if rule.kind == "latency":
            time.sleep(rule.latency_ms / 1000)
            return None
        if inner:
            return self._fault_response(api, 504, None)
        if rule.kind == "hang":
            time.sleep(rule.hang_seconds)
        self._drop(environ)
        return None

    @staticmethod
    def _drop(environ, *, reset: bool = False) -> None:
        """Close the client's connection without an answer: with a FIN (``drop``, ``hang``), or with
        an RST (``idle_reset``: a load balancer or front door that forgot an idle flow answers the
        next packet on it with a reset). The request's bytes arrived; nothing of it was carried out."""
        close = environ.get(CLOSE_KEY) if environ else None
        if close is not None:
            close(reset=reset)
        raise ConnectionDropped("connection dropped by fault injection")

    @staticmethod
    def _throttled(api: str, throttle: Throttle) -> Response:
        """A modelled limit was reached: Partner Center's or Graph's documented 429."""
        headers = {"Retry-After": str(throttle.retry_after)}
        if api == "pc":
            return json_response({"statusCode": 429, "message": f"Rate limit is exceeded. Try again in "
                                                                f"{throttle.retry_after} seconds."}, 429, headers)
        headers.update({"x-ms-throttle-scope": throttle.scope, "x-ms-throttle-information": throttle.information})
        return graph_error(429, "TooManyRequests", "Too many requests. Please retry after the time in"
                                                   " Retry-After.", headers=headers).response

    @staticmethod
    def _fault_response(api: str, status: int, retry_after: int | None) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if api == "pc" and status == 429:
            wait = retry_after if retry_after is not None else 60
            return json_response({"statusCode": 429, "message": f"Rate limit is exceeded. Try again "
                                                                f"in {wait} seconds."}, 429, headers)
        if api == "pc":
            return pc_error(status, status, "The service is temporarily unavailable.",
                            headers=headers).response
        if api == "graph":
            code = {429: "TooManyRequests", 503: "serviceNotAvailable", 504: "gatewayTimeout"}.get(
                status, "generalException")
            return graph_error(status, code, "Injected fault.", headers=headers).response
        response = entra_error(status, "temporarily_unavailable", 90033,
                               "A transient error has occurred. Please try again.").response
        response.headers.extend(headers)
        return response

    def _route(self, request: Request, api: str) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except (NotFound, MethodNotAllowed) as exc:
            return self._not_found(api, exc)
        except HTTPException as exc:  # e.g. RequestRedirect for a trailing slash
            return exc.get_response(request.environ)
        if api == "control" and self.control_token and (
                request.headers.get("X-Emulator-Token") != self.control_token):
            return json_response({"error": "X-Emulator-Token required"}, 401)
        request_id = request.headers.get("MS-RequestId")
        replay_key = None
        if api == "pc" and request.method in WRITE_METHODS and request_id:
            replay_key = (request_id, request.method, request.path)
            stored = self.state.row("SELECT status, headers, body FROM idempotency WHERE request_id = ?"
                                    " AND method = ? AND path = ?", replay_key)
            if stored is not None:
                return Response(stored["body"], status=stored["status"],
                                headers=json.loads(stored["headers"]))
        try:
            with self.state.transaction():
                if api != "control":
                    self.settle(self.state.now())
                ctx = Context(state=self.state, catalog=self.catalog, partner=self.partner,
                              faults=self.faults, request=request, now=self.state.now(),
                              base_url=request.host_url.rstrip("/"), settle=self.settle,
                              dispatch=self.handle, throttling=self.throttling)
                if api in ("pc", "graph"):
                    ctx.claims = self._authenticate(ctx, api)
                response = endpoint(ctx, **args)
                if replay_key is not None and response.status_code < 500:
                    self._remember(replay_key, response)
        except ApiError as exc:
            response = exc.response
            if replay_key is not None and response.status_code < 500:
                with self.state.transaction():
                    self._remember(replay_key, response)
        return response

    def _remember(self, key: tuple, response: Response) -> None:
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        self.state.execute("INSERT OR IGNORE INTO idempotency (request_id, method, path, status,"
                           " headers, body) VALUES (?, ?, ?, ?, ?, ?)",
                           (*key, response.status_code, json.dumps(headers), response.get_data()))

    @staticmethod
    def _not_found(api: str, exc: HTTPException) -> Response:
        status = exc.code or 404
        if api == "pc":
            return pc_error(status, 1000 if status == 404 else 800002,
                            "Resource not found." if status == 404 else "Method not allowed.").response
        if api == "graph":
            return graph_error(status, "BadRequest" if status == 404 else "Request_BadRequest",
                               "Resource not found for the segment." if status == 404
                               else "Method not allowed.").response
        return json_response({"error": "not_found" if status == 404 else "method_not_allowed"}, status)

    def _authenticate(self, ctx: Context, api: str) -> dict:
        token = identity.bearer_token(ctx.request)
        if api == "pc":
            realm = {"WWW-Authenticate": f'Bearer realm="{identity.PC_RESOURCE}", error="invalid_token"'}
            if token is None:
                raise pc_error(401, 800001, "Partner token missing.", headers=realm)
            try:
                claims = identity.verify_access_token(ctx.state, token, ctx.now, identity.PC_RESOURCE)
            except identity.TokenError as exc:
                raise pc_error(401, 900300, str(exc), headers=realm) from None
            if claims["tid"] != ctx.partner.tenant_id:
                raise pc_error(401, 900300, "The token was not issued for the partner tenant.",
                               headers=realm)
            if claims.get("idtyp") == "user" and "mfa" not in claims.get("amr", []):
                raise pc_error(401, 900300, "MFA required", headers={
                    "WWW-Authenticate": 'Bearer error="invalid_token"'})
            return claims
        # Graph names the authority and its own app id in the challenge, with error="invalid_token"
        # once a token was presented (RFC 6750 section 3).
        challenge = (f'Bearer realm="", authorization_uri="{ctx.base_url}/common/oauth2/authorize", '
                     f'client_id="{GRAPH_APP_ID}"')
        if token is None:
            raise graph_error(401, "InvalidAuthenticationToken", "Access token is empty.",
                              headers={"WWW-Authenticate": challenge})
        try:
            return identity.verify_access_token(ctx.state, token, ctx.now, identity.GRAPH_RESOURCE)
        except identity.TokenError as exc:
            raise graph_error(401, "InvalidAuthenticationToken", str(exc), headers={
                "WWW-Authenticate": f'{challenge}, error="invalid_token"'}) from None

    @staticmethod
    def _echo_headers(request: Request, response: Response, api: str) -> None:
        if api == "pc":
            for name in ("MS-CorrelationId", "MS-RequestId"):
                if request.headers.get(name):
                    response.headers[name] = request.headers[name]
            response.headers.setdefault("MS-CV", uuid.uuid4().hex[:22])
            response.headers.setdefault("MS-ServerId", "msemulator")
        elif api == "graph":
            if request.headers.get("client-request-id"):
                response.headers["client-request-id"] = request.headers["client-request-id"]
            response.headers.setdefault("request-id", str(uuid.uuid4()))

    def _log(self, request: Request, status: int | None) -> None:
        headers = dict(request.headers)
        if "Authorization" in headers:
            scheme = headers["Authorization"].split(" ", 1)[0]
            headers["Authorization"] = f"{scheme} {REDACTED}"
        body = request.get_data(as_text=True)
        if request.mimetype == "application/x-www-form-urlencoded":
            form = {k: (REDACTED if k in ("client_secret", "client_assertion", "refresh_token", "code") else v)
                    for k, v in request.form.items()}
            body = json.dumps(form)
        elif request.mimetype == "application/json" and "password" in body.lower():
            body = _redact_json(body)
        self.state.log_request(method=request.method, path=request.path,
                               query=request.query_string.decode(), status=status,
                               headers=headers, body=body)
