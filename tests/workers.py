"""Helpers for tests that start real Celery worker processes."""

from django.db import connection


def database_url_for_worker() -> str:
    """The test database's URL, for a worker subprocess to connect to the same data."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            raise RuntimeError("An in-memory SQLite test database cannot be shared with a worker process.")
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
