"""Benchmark settings: the portal's, plus the benchmark-only app and a throwaway database under var/bench/."""

import os

os.environ.setdefault("PORTAL_TESTING", "1")

from portal.settings import *  # noqa: F403
from portal.settings import DATABASES, INSTALLED_APPS, VAR_DIR

BENCH_DIR = VAR_DIR / "bench"
BENCH_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [*INSTALLED_APPS, "benchmarks.benchapp.apps.BenchAppConfig"]
ROOT_URLCONF = "benchmarks.urls"
DEBUG = False
# create_test_db() builds (and later drops) a throwaway database: a file under
# var/bench/ on SQLite, test_<name> on Postgres when DATABASE_URL is set.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(BENCH_DIR / "bench.sqlite3")}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
