"""Fixtures shared by every app's tests. App-specific factories live in <app>/tests/factories.py."""

import pytest


@pytest.fixture(autouse=True)
def _own_audit_checkpoints(settings, tmp_path):
    """Each test's database starts empty, so its audit checkpoints (core/audit_anchor.py) start empty too."""
    settings.AUDIT_CHECKPOINT_PATH = tmp_path / "audit-checkpoints.jsonl"


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
