"""Fixtures shared by every app's tests. App-specific factories live in <app>/tests/factories.py."""

import os

import pytest

# Every log record of the suite is scanned for secrets; a test that logs one fails (tests/security/secret_scan.py).
pytest_plugins = ["tests.security.secret_scan"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, test in a database file (WAL, BEGIN IMMEDIATE, a busy timeout: portal/settings.py), not in memory.

    An in-memory database exists only inside one connection, so Django hands the live server thread the
    test thread's very connection; the two then run statements on it at the same time (a browser page
    polling while the test calls a task) and SQLite answers "database table is locked". With a file each
    thread has its own connection and waits its turn for the write lock, as the portal does in production.
    The file is per process (xdist workers, mutation workers) and dropped at the end of the session.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        folder = tmp_path_factory.mktemp(f"db-{os.getpid()}")
        database.setdefault("TEST", {})["NAME"] = str(folder / "test.sqlite3")


@pytest.fixture(autouse=True)
def _own_audit_checkpoints(settings, tmp_path):
    """Each test's database starts empty, so its audit checkpoints (core/audit_anchor.py) start empty too."""
    settings.AUDIT_CHECKPOINT_PATH = tmp_path / "audit-checkpoints.jsonl"


@pytest.fixture(autouse=True)
def _own_privacy_files(settings, tmp_path):
    """Each test's database starts empty, so its export and authorisation files do too: the retention
    purge deletes files without a row, and must not reach a development database's files."""
    settings.PRIVACY_EXPORT_DIR = str(tmp_path / "privacy-exports")


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
