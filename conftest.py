"""Fixtures shared by every app's tests. App-specific factories live in <app>/tests/factories.py."""

import os
from pathlib import Path

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
    elif "MUTANT_UNDER_TEST" in os.environ:
        _mutation_worker_database(database)


# The slot lock of this process, held open until it exits (a killed mutant worker releases it too).
_mutation_slot_lock = None


def _mutation_worker_database(database: dict) -> None:
    """Under mutmut on PostgreSQL: a test database per concurrent worker, cloned from a migrated template.

    mutmut runs each mutant's tests in a forked process, several at once (``--max-children``); with the
    default name they would all create and drop the one ``test_<NAME>``. Each takes the first free slot
    (an exclusive lock on a file, released when the process ends however it ends) and uses
    ``test_<NAME>_mutate<slot>``, so at most as many databases as workers exist, and one left behind by a
    killed worker is replaced by the next. Each is a copy of ``test_<NAME>_mutate``, migrated once by
    tools/mutate.py: copying takes about a second where building the schema takes tens, and the copy has
    what migrations alone create (row-level security policies, triggers). See docs/mutation-testing.md.
    """
    import fcntl
    import tempfile

    import dj_database_url

    global _mutation_slot_lock
    # From DATABASE_URL, not the settings: mutmut forks each worker from a process that has run a test session
    # already, and that session renamed the settings' database to its test database.
    template = f"test_{dj_database_url.parse(os.environ['DATABASE_URL'])['NAME']}_mutate"
    for slot in range(64):
        lock = open(Path(tempfile.gettempdir()) / f"portal-{template}{slot}.lock", "w")  # noqa: SIM115 - held to exit
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        _mutation_slot_lock = lock
        database.setdefault("TEST", {}).update({"NAME": f"{template}{slot}", "TEMPLATE": template})
        return
    raise RuntimeError("No free mutation test database slot of 64.")


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


@pytest.fixture(scope="session", autouse=True)
def _flush_by_deleting_rows_on_postgresql():
    """After each transactional test Django empties every table with one ``TRUNCATE`` of all of them, which on
    PostgreSQL gives each of about 150 tables and their indexes new files: about a second a test, 170 tests.
    As a superuser, the same tables are emptied by deleting the rows of those that have any, with triggers and
    foreign-key checks off for the transaction (``session_replication_role``), as ``TRUNCATE`` skips them too.
    Anything else (SQLite, a role that is not a superuser, an error) takes Django's own way.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        from django.db import transaction

        connection = self.connection
        try:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                if not cursor.fetchone()[0]:
                    raise PermissionError("not a superuser")
                tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
                quoted = [connection.ops.quote_name(table) for table in tables]
                # Table names from Django's own introspection, quoted: not input.
                cursor.execute(
                    " UNION ALL ".join(f"SELECT %s WHERE EXISTS (SELECT 1 FROM {name})" for name in quoted),  # noqa: S608
                    tables,
                )
                filled = [connection.ops.quote_name(row[0]) for row in cursor.fetchall()]
                cursor.execute("SET LOCAL session_replication_role = replica")
                for name in filled:
                    cursor.execute(f"DELETE FROM {name}")  # noqa: S608
        except Exception:
            truncate(self, sql_list)

    DatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    DatabaseOperations.execute_sql_flush = truncate
