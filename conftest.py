"""Fixtures shared by every app's tests. App-specific factories live in <app>/tests/factories.py."""

import pytest


@pytest.fixture(autouse=True)
def _fresh_keyring():
    """Data keys are cached per process; a rolled-back test must not leave cached ids behind."""
    from security.crypto import keyring

    keyring.clear()
    yield
    keyring.clear()
