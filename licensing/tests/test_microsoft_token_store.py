"""The shared msal token cache: both stores merge concurrent writers' entries and keep them sealed."""

import json
import uuid

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test.utils import override_settings

from licensing.microsoft import token_store
from licensing.microsoft.token_store import DatabaseTokenStore, DjangoCacheTokenStore
from licensing.models import MicrosoftTokenCache

pytestmark = pytest.mark.django_db


def _cache_blob(token_key: str, secret: str) -> str:
    return json.dumps({"AccessToken": {token_key: {"secret": secret}}, "Account": {}})


def _assert_two_writers_merge(first, second):
    first.merge_save(_cache_blob("worker-1", "token-one"))
    second.merge_save(_cache_blob("worker-2", "token-two"))
    merged = json.loads(first.load().blob)
    assert set(merged["AccessToken"]) == {"worker-1", "worker-2"}
    assert first.load().version == 2


def test_database_store_merges_writers_and_stores_no_plaintext():
    _assert_two_writers_merge(DatabaseTokenStore(), DatabaseTokenStore())
    stored = MicrosoftTokenCache.objects.get(name=token_store.CACHE_NAME).ciphertext
    assert "token-one" not in stored and "worker-2" not in stored


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL: the Redis store is tested against Redis")
def test_redis_store_merges_writers_and_stores_no_plaintext():
    prefix = f"test-token-store-{uuid.uuid4().hex[:8]}"
    redis_cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": settings.REDIS_URL,
                   "KEY_PREFIX": prefix}
    with override_settings(CACHES={"default": redis_cache}):
        cache = caches["default"]
        try:
            store = DjangoCacheTokenStore()
            _assert_two_writers_merge(store, DjangoCacheTokenStore())
            raw = cache.get(store.key)
            assert "token-one" not in raw["ciphertext"] and "worker-2" not in raw["ciphertext"]
        finally:
            cache.delete_many([DjangoCacheTokenStore().key, f"{DjangoCacheTokenStore().key}:lock"])
