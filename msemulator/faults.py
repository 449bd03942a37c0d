"""Fault injection and per-route rate limits, configured through the control API."""

import fnmatch
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

# idle_reset: the connection is reset (RST, no answer) when a request arrives on a kept-alive
# connection that idled at least `idle_seconds` since its previous response, as an Azure load
# balancer or front door does once its idle timeout has forgotten the flow. A request on a new
# connection never matches it.
KINDS = ("status", "latency", "drop", "hang", "idle_reset")


@dataclass
class FaultRule:
    pattern: str
    method: str = "*"
    kind: str = "status"
    status: int = 503
    retry_after: int | None = None
    latency_ms: int = 0
    hang_seconds: float = 30.0
    idle_seconds: float = 0.0
    times: int | None = 1
    rate: float | None = None
    seed: int | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    hits: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        self._rng = random.Random(self.seed)

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and fnmatch.fnmatchcase(path, self.pattern)

    def as_dict(self) -> dict:
        return {"id": self.id, "pattern": self.pattern, "method": self.method, "kind": self.kind,
                "status": self.status, "retryAfter": self.retry_after, "latencyMs": self.latency_ms,
                "hangSeconds": self.hang_seconds, "idleSeconds": self.idle_seconds, "times": self.times,
                "rate": self.rate, "seed": self.seed, "hits": self.hits}


@dataclass
class RateLimit:
    pattern: str
    limit: int
    window_seconds: float = 60.0
    method: str = "*"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    calls: deque = field(default_factory=deque)

    def as_dict(self) -> dict:
        return {"id": self.id, "pattern": self.pattern, "method": self.method, "limit": self.limit,
                "windowSeconds": self.window_seconds}


class FaultInjector:
    def __init__(self):
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self.limits: list[RateLimit] = []

    def add_rule(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def add_limit(self, limit: RateLimit) -> RateLimit:
        with self._lock:
            self.limits.append(limit)
        return limit

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.limits.clear()

    def pick(self, method: str, path: str, idle: float | None = None) -> FaultRule | None:
        """The first matching rule that fires for this call (consumes one of its `times`). ``idle``
        is how long the call's connection idled before it (None: a new connection)."""
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path):
                    continue
                if rule.kind == "idle_reset" and (idle is None or idle < rule.idle_seconds):
                    continue
                if rule.rate is not None and rule._rng.random() >= rule.rate:
                    continue
                if rule.times is not None:
                    if rule.times <= 0:
                        continue
                    rule.times -= 1
                rule.hits += 1
                return rule
        return None

    def throttle(self, method: str, path: str) -> int | None:
        """Seconds to wait if a rate limit is exceeded (sliding window), else None."""
        now = time.monotonic()
        with self._lock:
            for limit in self.limits:
                if limit.method not in ("*", method) or not fnmatch.fnmatchcase(path, limit.pattern):
                    continue
                while limit.calls and limit.calls[0] <= now - limit.window_seconds:
                    limit.calls.popleft()
                if len(limit.calls) >= limit.limit:
                    return max(1, int(limit.calls[0] + limit.window_seconds - now + 0.999))
                limit.calls.append(now)
        return None
