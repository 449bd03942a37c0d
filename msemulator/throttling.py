"""Microsoft's throttling, modelled: on by default, as it is in production (docs/decisions/020).

Graph, identity and access service limits (learn.microsoft.com/graph/throttling-limits, "Identity
and access service limits"): requests are charged ResourceUnits (GET users 2, GET subscribedSkus 3,
anything else 1; $select -1, $expand +1, $top under 20 -1, never below 1) against a budget per
application and tenant of 3,500 / 5,000 / 8,000 per 10 seconds for a tenant of under 50 / up to 500 /
more users, and writes (POST, PATCH, PUT, DELETE) against 3,000 per 2 min 30 s per application and
tenant and 18,000 per 5 minutes per tenant. Each request inside a $batch is charged on its own; the
$batch envelope is not. A throttled answer is 429 `TooManyRequests` with `Retry-After` and
`x-ms-throttle-scope` / `x-ms-throttle-information`.

Partner Center (partner-center/developer/api-throttling-guidance): the operations Microsoft lists as
throttled (a customer, its subscriptions, orders, carts and their checkout, provisioning status) are
limited per partner tenant and customer tenant. Microsoft does not publish the figures and adjusts
them; the emulator assumes 500 requests per 60 seconds (configurable). The answer is Partner Center's
documented `{"statusCode": 429, "message": "Rate limit is exceeded. Try again in N seconds."}`.

Windows slide over the emulator clock, so tests and benchmarks can move time instead of waiting.
`Retry-After` is the time until the request would fit, not the whole window. A throttled request is
not charged. Configured through `/_emulator/throttling`; a reset restores the defaults.
"""

from __future__ import annotations

import copy
import math
import re
import threading
from collections import Counter, deque
from dataclasses import dataclass

import jwt

DEFAULTS = {
    "enabled": True,
    "graph": {
        # ResourceUnits per application and tenant, by tenant size (users): S < 50 <= M <= 500 < L.
        "resourceUnits": {"S": 3500, "M": 5000, "L": 8000},
        "resourceUnitWindowSeconds": 10,
        "writes": 3000,  # per application and tenant
        "writeWindowSeconds": 150,
        "tenantWrites": 18000,  # per tenant, every application
        "tenantWriteWindowSeconds": 300,
    },
    "partnerCenter": {
        "perCustomer": 500,  # per partner tenant and customer tenant (assumed: Microsoft publishes none)
        "perCustomerWindowSeconds": 60,
    },
}

WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
GRAPH_PREFIX = re.compile(r"^/graph/(v1\.0|beta)")
GRAPH_COSTS = [(re.compile(r"^/users/?$"), "GET", 2), (re.compile(r"^/subscribedSkus/?$"), "GET", 3)]
PC_CUSTOMER_OPERATIONS = re.compile(
    r"^/partnercenter/v1/customers/(?P<customer>[^/]+)(/?$|/(subscriptions|orders|carts)(/|$))")


@dataclass
class Throttle:
    retry_after: int
    scope: str
    information: str


class Window:
    """A sliding window of charges: (time, cost) entries younger than ``seconds``."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.entries: deque = deque()
        self.used = 0.0

    def _expire(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - self.seconds:
            self.used -= self.entries.popleft()[1]

    def wait(self, now: float, cost: float, limit: float) -> float:
        """Seconds until ``cost`` fits under ``limit`` (0 when it fits now)."""
        self._expire(now)
        excess = self.used + cost - limit
        if excess <= 0:
            return 0.0
        for at, charged in self.entries:
            excess -= charged
            if excess <= 0:
                return at + self.seconds - now
        return self.seconds  # a single request costlier than the whole budget

    def charge(self, now: float, cost: float) -> None:
        self.entries.append((now, cost))
        self.used += cost


def graph_cost(method: str, path: str, args) -> int:
    cost = next((c for pattern, m, c in GRAPH_COSTS if m == method and pattern.match(path)), 1)
    if "$select" in args:
        cost -= 1
    if "$expand" in args:
        cost += 1
    top = args.get("$top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


def _claims(request) -> dict:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return {}
    try:  # only to key the budget; the token is verified (or refused) after this
        return jwt.decode(header[7:], options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}


class Throttling:
    def __init__(self, tenant_users):
        self._lock = threading.Lock()
        self._tenant_users = tenant_users  # tenant id -> number of users
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.config = copy.deepcopy(DEFAULTS)
            self.windows: dict[tuple, Window] = {}
            self.throttled: Counter = Counter()
            self._sizes: dict[str, tuple[float, str]] = {}

    def as_dict(self) -> dict:
        return {**copy.deepcopy(self.config), "throttled": dict(self.throttled)}

    def configure(self, changes: dict) -> dict:
        with self._lock:
            merged = copy.deepcopy(self.config)
            for key, value in changes.items():
                if key not in merged:
                    raise KeyError(key)
                if isinstance(merged[key], dict):
                    if not isinstance(value, dict) or set(value) - set(merged[key]):
                        raise KeyError(f"{key}: {', '.join(sorted(set(value) - set(merged[key])))}")
                    for inner, figure in value.items():
                        if isinstance(merged[key][inner], dict):
                            if not isinstance(figure, dict) or set(figure) - set(merged[key][inner]):
                                raise KeyError(f"{key}.{inner}")
                            merged[key][inner].update({k: float(v) for k, v in figure.items()})
                        else:
                            merged[key][inner] = float(figure)
                else:
                    merged[key] = bool(value)
            self.config = merged
            self.windows.clear()
        return self.as_dict()

    def _size(self, tenant_id: str, now: float) -> str:
        """S, M or L by the tenant's users, counted at most once a minute (a race counts twice, harmlessly)."""
        cached = self._sizes.get(tenant_id)
        if cached is None or now - cached[0] > 60:
            users = self._tenant_users(tenant_id)
            cached = (now, "S" if users < 50 else "M" if users <= 500 else "L")
            self._sizes[tenant_id] = cached
        return cached[1]

    def check(self, request, api: str, now: float) -> Throttle | None:
        """Charge the request to its budgets, or say how long it must wait (charging nothing)."""
        if not self.config["enabled"] or api not in ("graph", "pc"):
            return None
        claims = _claims(request)
        tenant, app = claims.get("tid"), claims.get("appid") or claims.get("azp")
        if not tenant or not app:
            return None  # refused later as unauthenticated
        if api == "graph":
            return self._graph(request, now, tenant, app)
        return self._partner_center(request, now, tenant)

    def _graph(self, request, now: float, tenant: str, app: str) -> Throttle | None:
        path = GRAPH_PREFIX.sub("", request.path)
        if path in ("/$batch", "/$batch/"):
            return None  # each inner request is charged on its own
        g = self.config["graph"]
        write = request.method in WRITES
        # Read outside the lock: a $batch's inner requests are checked while their envelope holds the
        # state's lock, so taking the state's lock under ours could deadlock with another request.
        size = self._size(tenant, now)
        with self._lock:
            budgets = [((tenant, app, "ru"), g["resourceUnitWindowSeconds"], g["resourceUnits"][size],
                        graph_cost(request.method, path, request.args), "Tenant_Application", "ResourceUnit")]
            if write:
                budgets += [((tenant, app, "w"), g["writeWindowSeconds"], g["writes"], 1, "Tenant_Application",
                             "Write"),
                            ((tenant, "w"), g["tenantWriteWindowSeconds"], g["tenantWrites"], 1, "Tenant", "Write")]
            result = self._charge(budgets, now)
            if result is None:
                return None
            self.throttled["graph"] += 1
        scope, name, seconds = result
        limit = "Write" if name == "Write" else "ReadWrite" if write else "Read"
        return Throttle(seconds, f"{scope}/{limit}/{app}/{tenant}", f"{name}LimitExceeded")

    def _partner_center(self, request, now: float, partner: str) -> Throttle | None:
        match = PC_CUSTOMER_OPERATIONS.match(request.path)
        if match is None:
            return None
        p = self.config["partnerCenter"]
        key = (partner, match["customer"], "pc")
        with self._lock:
            result = self._charge([(key, p["perCustomerWindowSeconds"], p["perCustomer"], 1, "", "")], now)
            if result is not None:
                self.throttled["partnerCenter"] += 1
                return Throttle(result[2], f"Partner_Customer/{partner}/{match['customer']}", "")
        return None

    def _charge(self, budgets: list, now: float):
        """All budgets or none: (scope, limit name, seconds to wait) of the longest wait, or None."""
        worst = None
        for key, seconds, limit, cost, scope, name in budgets:
            window = self.windows.setdefault(key, Window(seconds))
            wait = window.wait(now, cost, limit)
            if wait > 0 and (worst is None or wait > worst[2]):
                worst = (scope, name, max(1, math.ceil(wait)))
        if worst is not None:
            return worst
        for key, _seconds, _limit, cost, _scope, _name in budgets:
            self.windows[key].charge(now, cost)
        return None
