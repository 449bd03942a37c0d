"""Fixtures shared by every app's tests. App-specific factories live in <app>/tests/factories.py."""

import pytest


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Data keys and cached values are per process; a rolled-back test must not leave them behind."""
    from django.core.cache import cache

    from core.crypto import keyring

    keyring.clear()
    cache.clear()
    yield
    keyring.clear()
    cache.clear()


@pytest.fixture(autouse=True)
def _erasure_log(tmp_path_factory, settings):
    """Crypto-shredding writes the erasure log outside the database; tests keep theirs in a temporary folder."""
    settings.ERASURE_LOG_PATH = str(tmp_path_factory.mktemp("erasure") / "erasure-log.jsonl")
