"""The API's request rate limit: per API key (or signed-in user, or address), a sliding window of two counters.

DRF's ``SimpleRateThrottle`` keeps each caller's list of request times in the cache, reads it and writes it
whole back on every request. That is two round trips, a list as long as the limit, pickled both ways (the
HTTP benchmark's raised limit grew it to 11,000 floats, 0.7 ms a request), and a lost count under concurrency:
two requests that read the same list each write back their own, so a burst can pass the limit.

Here each period of the rate (a minute for "600/min") has a counter. A request increments the current
period's counter and reads the previous period's, in one round trip on Redis (a pipeline; ``INCR`` is
atomic, so concurrent requests each count once). The requests of the last full period are estimated as the
previous period's count, weighted by the share of it still inside the last period, plus the current count:
the sliding window counter, which assumes the previous period's requests were spread evenly. A refused
request takes its increment back, so, as with DRF, only allowed requests count against the limit.
"""

from __future__ import annotations

import contextlib

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import SimpleRateThrottle

# A weighted count that is exactly the limit on paper may come out a hair above it in floating point.
_ROUNDING = 1e-9


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per API key (or per signed-in user) request rate."""

    scope = "api_key"

    @property
    def cache(self):
        # The backend itself: DRF's is Django's proxy, behind which the Redis client would not be found.
        return caches["default"]

    def get_cache_key(self, request, view):
        if request.auth is not None and hasattr(request.auth, "prefix"):
            ident = f"key:{request.auth.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        period = int(self.now // self.duration)
        self.elapsed = (self.now - period * self.duration) / self.duration  # share of this period gone, in [0, 1)
        current_key, previous_key = f"{key}:{period}", f"{key}:{period - 1}"
        self.current, self.previous = _count_and_read(self.cache, current_key, previous_key, 2 * self.duration)
        # The requests of the last full period, estimated from the two counters.
        if self.previous * (1 - self.elapsed) + self.current <= self.num_requests + _ROUNDING:
            return True
        _take_back(self.cache, current_key)
        self.current -= 1
        return False

    def wait(self):
        """Seconds until one more request fits, if no other arrives meanwhile."""
        room = self.num_requests - 1 - self.current
        if room >= 0 and self.previous:
            # Still in this period: the previous period's weight falls until the estimate leaves room.
            fraction = 1 - room / self.previous
            if fraction < 1:
                return max((fraction - self.elapsed) * self.duration, 0.0)
        # In the next period: this period's count is the one that weighs, falling the same way.
        until_next = (1 - self.elapsed) * self.duration
        if self.current <= 0:
            return until_next
        return until_next + max(1 - (self.num_requests - 1) / self.current, 0.0) * self.duration


def _count_and_read(cache, current_key: str, previous_key: str, timeout: int) -> tuple[int, int]:
    """Increment the current period's counter, read the previous period's: (current after, previous)."""
    if isinstance(cache, RedisCache):
        current, previous = cache.make_and_validate_key(current_key), cache.make_and_validate_key(previous_key)
        # Django's Redis client stores integers as they are, so INCR and cache.get() read the same value.
        client = cache._cache.get_client(current, write=True)
        pipeline = client.pipeline(transaction=False)
        pipeline.incr(current)
        pipeline.expire(current, timeout)  # a period's counter is incremented only during the period
        pipeline.get(previous)
        count, _, before = pipeline.execute()
        return count, int(before or 0)
    # Any other cache (in-process on the embedded defaults): its incr is atomic within its own lock.
    cache.add(current_key, 0, timeout)
    try:
        count = cache.incr(current_key)
    except ValueError:  # expired between add and incr
        cache.set(current_key, 1, timeout)
        count = 1
    return count, int(cache.get(previous_key) or 0)


def _take_back(cache, current_key: str) -> None:
    with contextlib.suppress(ValueError):  # the period's counter already expired: nothing left to take back
        cache.decr(current_key)

