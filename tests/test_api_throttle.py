"""The API's rate limit (core/api/throttling.py): a sliding window of two counters per caller, counted once per
allowed request even under concurrency, with the in-process cache and with Redis."""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test.utils import override_settings

from core.api.throttling import ApiKeyRateThrottle

PERIOD_START = 1_800_000_000.0  # a multiple of 60: a minute starts here


class ThreeAMinute(ApiKeyRateThrottle):
    rate = "3/min"


def _request(key_id) -> SimpleNamespace:
    return SimpleNamespace(auth=SimpleNamespace(prefix="abc", pk=key_id), user=None, META={})


def _at(seconds: float, key_id) -> tuple[bool, ThreeAMinute]:
    throttle = ThreeAMinute()
    throttle.timer = lambda: PERIOD_START + seconds
    return throttle.allow_request(_request(key_id), view=None), throttle


@pytest.fixture(params=["in-process", "redis"])
def cache_backend(request):
    if request.param == "in-process":
        caches["default"].clear()
        yield
        return
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL: the Redis path is tested against Redis")
    redis_cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": settings.REDIS_URL,
                   "KEY_PREFIX": f"test-throttle-{uuid.uuid4().hex[:8]}"}
    with override_settings(CACHES={"default": redis_cache}):
        yield


def test_the_limit_holds_and_a_refused_request_is_not_counted(cache_backend):
    key = uuid.uuid4()
    assert [_at(s, key)[0] for s in (1, 2, 3)] == [True, True, True]
    allowed, throttle = _at(4, key)
    assert not allowed and throttle.current == 3  # the refused request took its increment back
    assert not _at(5, key)[0]
    assert _at(5, uuid.uuid4())[0]  # another key has its own count


def test_the_previous_minute_weighs_by_the_share_of_it_still_inside_the_last_minute(cache_backend):
    key = uuid.uuid4()
    for second in (50, 55, 58):
        assert _at(second, key)[0]
    # At 0:05 of the next minute 55/60 of the previous one still counts: 3 x 0.92 + 1 > 3.
    assert not _at(65, key)[0]
    # At 0:30: 3 x 0.5 + 1 = 2.5, room for one; then 3 x 0.5 + 2 = 3.5, none.
    assert _at(90, key)[0]
    assert not _at(91, key)[0]


def test_retry_after_is_when_a_request_fits_again(cache_backend):
    key = uuid.uuid4()
    for second in (50, 55, 58):
        _at(second, key)
    refused, throttle = _at(59, key)
    assert not refused
    wait = throttle.wait()
    # Room again once this minute's 3 weigh 2: at 0:20 of the next minute, 3 x (1 - 20/60) + 1 = 3.
    assert wait == pytest.approx(60 + 60 * (1 - 2 / 3) - 59)
    assert not _at(59 + wait - 1, key)[0]
    assert _at(59 + wait, key)[0]


def test_concurrent_requests_each_count_once(cache_backend):
    key, allowed, start = uuid.uuid4(), [], threading.Barrier(12)

    class TwentyAMinute(ApiKeyRateThrottle):
        rate = "20/min"

    def caller():
        start.wait()
        for _ in range(5):
            throttle = TwentyAMinute()
            throttle.timer = lambda: PERIOD_START + 10
            allowed.append(throttle.allow_request(_request(key), view=None))

    threads = [threading.Thread(target=caller) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 60 and allowed.count(True) == 20
