"""Django's own defaults, one JSON view and the portal's database: what any Django site pays per request.

Same database as the portal under test (``DATABASE_URL``; SQLite when unset) and the same connection
lifetime (``DB_CONN_MAX_AGE``), so the ratio measures the portal's own work, not a difference in set-up.
Middleware is the part of ``startproject``'s list that needs no app with tables (no sessions, auth or
messages: the view signs nobody in).
"""

import os

import dj_database_url

SECRET_KEY = os.environ.get("SECRET_KEY") or "bare-benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "benchmarks.bare.urls"
WSGI_APPLICATION = "benchmarks.bare.wsgi.application"
DATABASES = {
    "default": dj_database_url.config(
        default="sqlite:///" + os.path.join(os.environ.get("PORTAL_VAR_DIR", "var"), "portal.sqlite3"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
        conn_health_checks=True,
    )
}
USE_TZ = True
TIME_ZONE = "UTC"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
