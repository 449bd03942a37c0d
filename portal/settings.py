"""The one settings module. Everything comes from the environment.

Defaults serve local development (SQLite under var/, no Redis, the local Microsoft
emulator). Production (DEBUG off) refuses to start with development secrets.
"""

import base64
import hashlib
import os
import sys
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


TESTING = "pytest" in sys.modules or env_bool("PORTAL_TESTING", False)
DEBUG = env_bool("DEBUG", True)

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789abcdefghijklmnop"
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)


def _dev_key(label: str) -> str:
    """A deterministic development key, never accepted in production."""
    return base64.b64encode(hashlib.sha256(f"portal-dev-{label}".encode()).digest()).decode()


# Field encryption master keys: "kid:base64(32 bytes)" comma-separated, the first is active.
# Older keys stay listed during a rotation so existing data keys still unwrap.
DEV_MASTER_KEYS = f"dev1:{_dev_key('master')}"
FIELD_ENCRYPTION_MASTER_KEYS = os.environ.get("FIELD_ENCRYPTION_MASTER_KEYS", DEV_MASTER_KEYS)
BLIND_INDEX_KEY = os.environ.get("BLIND_INDEX_KEY", _dev_key("blind-index"))
AUDIT_HMAC_KEY = os.environ.get("AUDIT_HMAC_KEY", _dev_key("audit"))
# Only during a rotation of AUDIT_HMAC_KEY: the retiring key, accepted by verification until
# `manage.py rotate_audit_key` has re-chained the log under the new one (docs/decisions/027-hardening.md).
AUDIT_HMAC_PREVIOUS_KEY = os.environ.get("AUDIT_HMAC_PREVIOUS_KEY", "")
# Signed audit-head checkpoints, appended after each commit (core/audit_anchor.py). In production: a file on
# a volume of its own that the database role cannot reach, ideally append-only (chattr +a).
AUDIT_CHECKPOINT_PATH = Path(os.environ.get("AUDIT_CHECKPOINT_PATH", VAR_DIR / "audit" / "checkpoints.jsonl"))

if not DEBUG and not TESTING:
    weak = []
    # Django's own deploy check (security.W009) wants 50 characters, 5 of them distinct.
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        weak.append("SECRET_KEY")
    if FIELD_ENCRYPTION_MASTER_KEYS == DEV_MASTER_KEYS:
        weak.append("FIELD_ENCRYPTION_MASTER_KEYS")
    if _dev_key("blind-index") == BLIND_INDEX_KEY:
        weak.append("BLIND_INDEX_KEY")
    if _dev_key("audit") == AUDIT_HMAC_KEY:
        weak.append("AUDIT_HMAC_KEY")
    if weak:
        raise ImproperlyConfigured("Refusing to start in production with development secrets: " + ", ".join(weak))

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp_webauthn",
    "django_htmx",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "template_partials",
]
# The project's own apps, ground floor first (see docs/decisions/009-layers.md). Every model
# in them must be classified in the personal-data registry (core.checks).
PROJECT_APPS = ("core", "accounts", "licensing", "billing", "security", "privacy", "portal")
INSTALLED_APPS += PROJECT_APPS
# The tenant: the model every TenantModel row belongs to.
TENANT_MODEL = "accounts.Organization"

MIDDLEWARE = [
    # First: everything below runs with room on the interpreter's frame stack (core/frame_room.py, decision 055).
    "core.frame_room.FrameRoomMiddleware",
    "core.metrics.MetricsMiddleware",
    "core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.middleware.LogContextMiddleware",
    "accounts.middleware.OTPMiddleware",  # django-otp's, reading the session's device as decision 035 says
    "accounts.middleware.SessionLifetimeMiddleware",
    "security.middleware.StepUpMiddleware",
    "accounts.middleware.MFAGateMiddleware",
    "accounts.middleware.SessionActivityMiddleware",
    "accounts.middleware.OrganizationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "privacy.middleware.GlobalPrivacyControlMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "portal:home"
SILENCED_SYSTEM_CHECKS = ["auth.W004"]  # email is unique through its blind index, not the encrypted column
LOGOUT_REDIRECT_URL = "accounts:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "portal" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "portal.context_processors.portal",
            ],
            # {% url %} with the reverse remembered per process (core/urlcache.py).
            "builtins": ["core.templatetags.urls_remembered"],
        },
    },
]
# Django's widget templates, with inputs and selects rendered in Python to the same bytes (core/form_renderer.py).
FORM_RENDERER = "core.form_renderer.WidgetRenderer"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}",
        # Persistent: opening a PostgreSQL connection per request cost more than most pages' queries
        # (docs/performance.md, docs/decisions/023). The tenant setting is transaction-local, so a
        # reused connection carries no scope from the request before.
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        # A kept connection is checked before reuse, so a database restart costs no request.
        conn_health_checks=True,
    )
}
# Every request runs in one transaction so the Postgres row-level-security tenant
# setting (transaction-local) covers all of its queries. See docs/decisions/002.
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        # IMMEDIATE: a writer takes the lock when its transaction begins and others wait for it,
        # instead of failing with "database is locked" when a reader upgrades to a writer.
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
# Django's PostgreSQL backend whose health check of a kept connection needs no round trip unless the
# server has said something (core/postgresql/base.py, docs/decisions/033).
POSTGRES_ENGINE = "core.postgresql"
if IS_POSTGRES:
    DATABASES["default"]["ENGINE"] = POSTGRES_ENGINE

# Reads that must precede or span tenants (API key lookup, invitation tokens, periodic sweeps, key
# rotation, audit verification: core.tenancy.unscoped_no_tenant) run on their own connection as a
# role with BYPASSRLS; the application role cannot widen row-level security at all. Without
# SYSTEM_DATABASE_URL (SQLite, tests, single-role development) they use the default connection.
# See docs/decisions/025-rls-without-a-bypass.md.
DATABASE_ROUTERS = ["core.tenancy.SystemDatabaseRouter"]
TENANCY_SYSTEM_DATABASE = "default"
# Not in tests: each test runs inside one transaction of the default connection, which a second
# connection could not see; tests/test_rls.py opens the second connection itself where it matters.
if os.environ.get("SYSTEM_DATABASE_URL") and not TESTING:
    DATABASES["system"] = dj_database_url.parse(
        os.environ["SYSTEM_DATABASE_URL"],
        # Kept as long as the default connection: opening one per request for the API key lookup cost
        # more than the lookup (docs/decisions/023).
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
    if DATABASES["system"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["system"]["ENGINE"] = POSTGRES_ENGINE
    TENANCY_SYSTEM_DATABASE = "system"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
# Tests keep the cache in-process (and clear it per test), so parallel test workers sharing
# one Redis cannot see each other's keys or values encrypted under rolled-back data keys.
if REDIS_URL and not TESTING:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "portal"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "portal"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend with its user lookups as the system role (users have row-level security, decision 043).
    "accounts.backends.PortalModelBackend",
]
# Argon2id (Django's parameters: t=2, m=100 MiB, p=8). Sign-in runs django-axes before any hasher
# (AUTHENTICATION_BACKENDS above), so a locked-out account or address costs no hash. PBKDF2 stays
# second so older hashes still verify and are upgraded on the next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    # Tests create thousands of users; tests/security/test_hardening.py checks the production list.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request without it
STATICFILES_DIRS = [BASE_DIR / "portal" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": VAR_DIR / "media"}},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "core.storage.RememberingManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# Request bodies beyond this are refused with 413 instead of being parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440))
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

# Sessions and cookies (docs/decisions/027-hardening.md). A session ends after SESSION_IDLE_SECONDS
# without a request and SESSION_ABSOLUTE_SECONDS after sign-in however busy it is
# (accounts.middleware.SessionLifetimeMiddleware); the cookie and the stored session expire with the
# absolute lifetime too.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_IDLE_SECONDS = int(os.environ.get("SESSION_IDLE_SECONDS", 30 * 60))
SESSION_ABSOLUTE_SECONDS = int(
    os.environ.get("SESSION_ABSOLUTE_SECONDS", os.environ.get("SESSION_COOKIE_AGE", 12 * 3600))
)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
# "__Host-" cookies are Secure, Path=/ and without Domain, or the browser refuses them: a subdomain or a
# plain-HTTP page cannot plant or overwrite them. Only possible over HTTPS, so development keeps plain names.
COOKIE_NAME_PREFIX = "__Host-" if SECURE_COOKIES else ""
SESSION_COOKIE_NAME = f"{COOKIE_NAME_PREFIX}sessionid"
CSRF_COOKIE_NAME = f"{COOKIE_NAME_PREFIX}csrftoken"
CSRF_FAILURE_VIEW = "core.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# TLS terminates at the proxy (TLS 1.3 only, see deploy/nginx.conf); trust its header only when told to.
# Production (DEBUG off) is behind it unless told otherwise (a plain-HTTP loopback stack for benchmarks).
if env_bool("BEHIND_TLS_PROXY", not DEBUG):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 63072000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

# Brute-force protection: lock per account and per IP. The client IP comes from
# REMOTE_ADDR unless a trusted proxy count is configured, so a spoofed
# X-Forwarded-For cannot reset the counter.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", 0.25))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_IPWARE_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", 0)) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)
AXES_VERBOSE = False
# Axes counts failures under the email's blind index and the client address's keyed index
# (core.blind_index.ip_index), never the address or IP itself; the counters live in the cache
# (Redis in production, in-process in development and tests) with the cool-off as their expiry,
# so no axes table ever holds an attempt. Successful sign-ins are logged, encrypted, in
# accounts.SignInEvent instead of axes' access log. See docs/decisions/026-nothing-personal-in-plaintext.md.
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_USERNAME_CALLABLE = "accounts.signin.axes_username"
AXES_CLIENT_IP_CALLABLE = "accounts.signin.axes_client_ip"
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ACCESS_FAILURE_LOG = False
if "LocMemCache" in CACHES["default"]["BACKEND"] and (DEBUG or TESTING):
    # Without Redis (development, tests) the counters are per process, which a single dev server or
    # test process counts correctly; a production deployment keeps the warning (it needs Redis).
    SILENCED_SYSTEM_CHECKS.append("axes.W001")

OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "Cloud Licenses Portal")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Sensitive actions need a second-factor check within this many seconds.
MFA_REVERIFY_SECONDS = int(os.environ.get("MFA_REVERIFY_SECONDS", 600))

# Passkeys (django-otp-webauthn) are a second factor only, never a way to skip the password.
# A passkey is bound to the site's domain; browsers offer them only over HTTPS or on localhost,
# so a plain-HTTP development site uses http://localhost:<port>.
_site = urlsplit(SITE_URL)
_passkey_origin = (
    f"{_site.scheme}://{_site.netloc}"
    if _site.scheme == "https"
    else f"http://localhost{f':{_site.port}' if _site.port else ''}"
)
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_RP_ID = os.environ.get("OTP_WEBAUTHN_RP_ID", urlsplit(_passkey_origin).hostname)
OTP_WEBAUTHN_RP_NAME = OTP_TOTP_ISSUER
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list("OTP_WEBAUTHN_ALLOWED_ORIGINS", _passkey_origin)
OTP_WEBAUTHN_HELPER_CLASS = "accounts.passkeys.PasskeyHelper"

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Cloud Licenses Portal <no-reply@portal.local>")

# Privacy: the Data Privacy Officer named on the privacy notice and in request emails.
PRIVACY_OFFICER_NAME = os.environ.get("PRIVACY_OFFICER_NAME", "Data Privacy Officer")
# Who hears about blocked sign-ins, Azure fraud cases and a superuser breaking glass (comma-separated).
SECURITY_ALERT_EMAILS = tuple(
    x.strip() for x in os.environ.get("SECURITY_ALERT_EMAILS", "security@portal.local").split(",") if x.strip())
# Azure fraud policy: a case's score (0-100) from which new provisioning is held, and from which the
# Azure plan is suspended through Partner Center without waiting for a person.
SECURITY_FRAUD_BLOCK_SCORE = int(os.environ.get("SECURITY_FRAUD_BLOCK_SCORE", 60))
SECURITY_FRAUD_SUSPEND_SCORE = int(os.environ.get("SECURITY_FRAUD_SUSPEND_SCORE", 90))
# The IP-to-location table for impossible-travel checks; empty: the shipped one (decision 022).
SECURITY_GEOIP_CSV = os.environ.get("SECURITY_GEOIP_CSV", "")
PRIVACY_OFFICER_EMAIL = os.environ.get("PRIVACY_OFFICER_EMAIL", "privacy@portal.local")
PRIVACY_OFFICER_ADDRESS = os.environ.get("PRIVACY_OFFICER_ADDRESS", "")
# Accounts record the notice version in force at sign-up; privacy (a higher floor) knows it.
PRIVACY_NOTICE_CURRENT_VERSION = "privacy.notice.current_version_label"
# Access reports and portability exports: encrypted files, deleted when their download link expires.
PRIVACY_EXPORT_DIR = os.environ.get("PRIVACY_EXPORT_DIR", str(VAR_DIR / "privacy-exports"))
PRIVACY_EXPORT_TTL_DAYS = int(os.environ.get("PRIVACY_EXPORT_TTL_DAYS", 3))
# Days a requester has to cancel an approved deletion before it is carried out.
PRIVACY_ERASURE_GRACE_DAYS = int(os.environ.get("PRIVACY_ERASURE_GRACE_DAYS", 7))
# Public request form submissions per client address per hour (counted under a keyed hash, not the address).
PRIVACY_PUBLIC_FORM_PER_IP_HOUR = int(os.environ.get("PRIVACY_PUBLIC_FORM_PER_IP_HOUR", 5))
# Retention periods in days per class, over the defaults (privacy/services/retention.py), for example
# "active_plus_legal=3650,billing_record=3650" where a country keeps tax records ten years.
PRIVACY_RETENTION_DAYS = {
    name.strip(): int(days)
    for name, _, days in (item.partition("=") for item in os.environ.get("PRIVACY_RETENTION_DAYS", "").split(","))
    if name.strip() and days.strip()
}
# GDPR Art. 19: where each recipient in the disclosure log receives notices of erasure, correction and
# restriction ("microsoft=addr,distributor=addr,regulator=addr"). A recipient without an address keeps
# its notice pending for the officer to send by hand.
PRIVACY_RECIPIENT_CONTACTS = {
    name.strip(): address.strip()
    for name, _, address in (
        item.partition("=") for item in os.environ.get(
            "PRIVACY_RECIPIENT_CONTACTS",
            "microsoft=privacy-notices@microsoft.example,distributor=privacy@distributor.example",
        ).split(",")
    )
    if name.strip() and address.strip()
}
# /.well-known/gpc.json "lastUpdate": when our handling of the Global Privacy Control last changed.
GPC_LAST_UPDATE = os.environ.get("GPC_LAST_UPDATE", "2026-12-07")

# REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api_permissions.OrganizationRolePermission"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": os.environ.get("API_KEY_RATE", "600/min")},
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON with bounded nesting (a deep body is a 400, not a RecursionError), forms and uploads as DRF's.
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": None,
    # Only believe X-Forwarded-For behind the configured number of trusted proxies.
    "NUM_PROXIES": int(os.environ.get("TRUSTED_PROXY_COUNT", 0)),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cloud Licenses Portal API",
    "DESCRIPTION": "Organisation-scoped API for subscriptions, licenses, usage, billing and privacy.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Operations and directory operations share one status enum; named, rather than a hash-suffixed name.
    "ENUM_NAME_OVERRIDES": {"OperationStatusEnum": "licensing.models.provisioning.ProvisioningOperation.Status"},
}

# Celery: Redis when REDIS_URL is set; otherwise a local filesystem broker so
# `make run` has a real worker without Redis.
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _broker_dir = VAR_DIR / "celery-broker"
    for sub in ("out", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "data_folder_processed": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", TESTING)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"

# Licensing core: the provisioning outbox, catalog and purchases.
LICENSING_DEFAULT_MARGIN_PERCENT = Decimal(os.environ.get("LICENSING_DEFAULT_MARGIN_PERCENT", "15"))
LICENSING_CATALOG_COUNTRY = os.environ.get("LICENSING_CATALOG_COUNTRY", "US")
LICENSING_MCA_VERSION = os.environ.get("LICENSING_MCA_VERSION", "MCA-2024-10")
LICENSING_OPERATION_MAX_ATTEMPTS = int(os.environ.get("LICENSING_OPERATION_MAX_ATTEMPTS", 5))
LICENSING_OPERATION_MAX_POLLS = int(os.environ.get("LICENSING_OPERATION_MAX_POLLS", 60))
LICENSING_OPERATION_LEASE_SECONDS = int(os.environ.get("LICENSING_OPERATION_LEASE_SECONDS", 600))
LICENSING_OPERATION_STALE_MINUTES = int(os.environ.get("LICENSING_OPERATION_STALE_MINUTES", 10))
LICENSING_OPERATION_BACKOFF_SECONDS = int(os.environ.get("LICENSING_OPERATION_BACKOFF_SECONDS", 30))

# Billing: currencies, Microsoft's monthly-billing premium, the seller printed on invoices.
BILLING_CURRENCIES = tuple(os.environ.get("BILLING_CURRENCIES", "USD,EUR,GBP,CAD,AUD,CHF,SEK,NOK,DKK,NZD").split(","))
BILLING_DEFAULT_CURRENCY = os.environ.get("BILLING_DEFAULT_CURRENCY", "USD")
# Annual and three-year terms billed monthly cost 5% more than paying up front (Microsoft, since 2025-04-01).
BILLING_MONTHLY_BILLING_PREMIUM_PERCENT = Decimal(os.environ.get("BILLING_MONTHLY_BILLING_PREMIUM_PERCENT", "5"))
BILLING_SELLER_NAME = os.environ.get("BILLING_SELLER_NAME", "Cloud Licenses Portal Ltd")
BILLING_SELLER_ADDRESS = os.environ.get("BILLING_SELLER_ADDRESS", "1 Example Street, Springfield, 12345, US")
BILLING_SELLER_TAX_ID = os.environ.get("BILLING_SELLER_TAX_ID", "12-3456789")
BILLING_SELLER_COUNTRY = os.environ.get("BILLING_SELLER_COUNTRY", "US")
# Payment reminders: days after an invoice's due date (the reseller's dunning schedule).
BILLING_DUNNING_OFFSETS_DAYS = tuple(
    int(x) for x in os.environ.get("BILLING_DUNNING_OFFSETS_DAYS", "3,10,30").split(",") if x.strip())
# The card processor (billing/gateway.py). The local test gateway and its hosted page exist for
# development and tests only; production must name a real processor's gateway class.
BILLING_GATEWAY = os.environ.get("BILLING_GATEWAY", "billing.gateway.TestGateway")
BILLING_TEST_GATEWAY_ENABLED = BILLING_GATEWAY == "billing.gateway.TestGateway" and (DEBUG or TESTING)
BILLING_TEST_GATEWAY_SECRET = os.environ.get("BILLING_TEST_GATEWAY_SECRET", "test-gateway-not-a-secret")

CELERY_BEAT_SCHEDULE = {
    # Hourly: the run bills only the months that have closed, once (unique constraints), so repeats are free.
    "billing-run": {"task": "billing.tasks.billing_run_all", "schedule": 3600.0},
    "billing-reconcile": {"task": "billing.tasks.reconcile_unbilled", "schedule": 24 * 3600.0},
    "licensing-sweep-operations": {"task": "licensing.tasks.sweep_operations", "schedule": 60.0},
    "licensing-sync-catalog": {"task": "licensing.tasks.sync_catalog", "schedule": 24 * 3600.0},
    "licensing-reconcile": {"task": "licensing.tasks.reconcile_all", "schedule": 3600.0},
    # Decision 038: the triggers keep the tallies; this recount catches one that was ever bypassed.
    "licensing-check-assignment-tallies": {
        "task": "licensing.tasks.check_assignment_tallies", "schedule": 24 * 3600.0,
    },
    "licensing-refresh-renewals": {"task": "licensing.tasks.refresh_renewals", "schedule": 3600.0},
    "licensing-refresh-gdap": {"task": "licensing.tasks.refresh_all_gdap", "schedule": 3600.0},
    "portal-purge-idempotency-keys": {"task": "portal.purge_idempotency_keys", "schedule": 3600.0},
    "licensing-directory-sync": {"task": "licensing.directory.sync_all", "schedule": 6 * 3600.0},
    "licensing-expire-temporary-passwords": {
        "task": "licensing.directory.expire_temporary_passwords", "schedule": 3600.0,
    },
    "licensing-usage-snapshot": {"task": "licensing.usage.snapshot_all", "schedule": 24 * 3600.0},
    "licensing-reminders": {"task": "licensing.notifications.reminders_all", "schedule": 24 * 3600.0},
    "privacy-purge-expired-exports": {"task": "privacy.purge_expired_exports", "schedule": 3600.0},
    "privacy-run-due-erasures": {"task": "privacy.run_due_erasures", "schedule": 3600.0},
    # Art. 19 notices are sent on commit; this catches any whose sending failed.
    "privacy-send-recipient-notices": {"task": "privacy.send_recipient_notices", "schedule": 3600.0},
    "privacy-retention-purge": {"task": "privacy.retention_purge", "schedule": 24 * 3600.0},
    # Staff grants: mark expired ones (access already ends at expiry) and remind staff 3 days and 24 hours before.
    "accounts-staff-grants": {"task": "accounts.staff_grants_expire_and_remind", "schedule": 900.0},
    # Azure fraud (decision 022): Partner Center's events hourly, our own usage anomaly scan daily.
    "security-poll-fraud-events": {"task": "security.fraud.poll_events", "schedule": 3600.0},
    "security-scan-azure-usage": {"task": "security.fraud.scan_usage", "schedule": 24 * 3600.0},
}
# One heartbeat per queue every minute: the status page shows which queues have a live worker.
for _queue in ("provisioning", "privacy", "default"):
    CELERY_BEAT_SCHEDULE[f"portal-heartbeat-{_queue}"] = {
        "task": "portal.worker_heartbeat",
        "schedule": 60.0,
        "kwargs": {"queue": _queue},
        "options": {"queue": _queue, "expires": 55},
    }

# Microsoft endpoints. Defaults point at the local emulator; the real values are
# https://login.microsoftonline.com, https://api.partnercenter.microsoft.com and
# https://graph.microsoft.com (see README "Configuration").
MSEMULATOR_URL = os.environ.get("MSEMULATOR_URL", "https://127.0.0.1:8443")
MS_AUTHORITY_HOST = os.environ.get("MS_AUTHORITY_HOST", MSEMULATOR_URL)
MS_PARTNER_CENTER_URL = os.environ.get("MS_PARTNER_CENTER_URL", f"{MSEMULATOR_URL}/partnercenter")
MS_GRAPH_URL = os.environ.get("MS_GRAPH_URL", f"{MSEMULATOR_URL}/graph")
MS_CA_BUNDLE = os.environ.get("MS_CA_BUNDLE", str(VAR_DIR / "msemulator" / "msemulator-ca.pem"))
# Defaults are the emulator's published development credentials (msemulator/config.py);
# the portal never imports the emulator, so they are repeated here.
EMULATOR_PARTNER_TENANT_ID = "8a1f4c2e-6b3d-4e7a-9c51-2d0f3b6a7e94"
EMULATOR_CLIENT_ID = "5c2d8e1f-3a4b-4c6d-8e9f-0a1b2c3d4e5f"
EMULATOR_CLIENT_SECRET = "msemulator-dev-secret"
MS_PARTNER_TENANT_ID = os.environ.get("MS_PARTNER_TENANT_ID", EMULATOR_PARTNER_TENANT_ID)
MS_CLIENT_ID = os.environ.get("MS_CLIENT_ID", EMULATOR_CLIENT_ID)
MS_CLIENT_SECRET = os.environ.get("MS_CLIENT_SECRET", EMULATOR_CLIENT_SECRET)
if not DEBUG and not TESTING and "login.microsoftonline.com" in MS_AUTHORITY_HOST and (
    MS_CLIENT_SECRET == EMULATOR_CLIENT_SECRET
):
    raise ImproperlyConfigured("Refusing to call Microsoft with the emulator's development credentials.")
# Certificate credentials instead of the secret (a PEM private key file and its thumbprint).
MS_CLIENT_CERTIFICATE_KEY_PATH = os.environ.get("MS_CLIENT_CERTIFICATE_KEY_PATH", "")
MS_CLIENT_CERTIFICATE_THUMBPRINT = os.environ.get("MS_CLIENT_CERTIFICATE_THUMBPRINT", "")
# App+User calls (fraud events, GDAP) act as the partner's Admin Agent: a refresh token obtained
# with MFA bootstraps the shared token cache once.
MS_ADMIN_AGENT_REFRESH_TOKEN = os.environ.get("MS_ADMIN_AGENT_REFRESH_TOKEN", "")
# Price sheets live on another host at Microsoft (https://api.partner.microsoft.com); the emulator
# serves them under its Partner Center prefix, which is the default when this is empty.
MS_PRICING_URL = os.environ.get("MS_PRICING_URL", "")
# Microsoft's "Product names and service plan identifiers for licensing" CSV (friendly plan names).
# Empty: Microsoft's download address with Microsoft's sign-in host, the emulator's copy otherwise.
MS_PRODUCT_NAMES_URL = os.environ.get("MS_PRODUCT_NAMES_URL", "")
MS_HTTP_TIMEOUT = float(os.environ.get("MS_HTTP_TIMEOUT", 15))
MS_RETRY_BUDGET = int(os.environ.get("MS_RETRY_BUDGET", 6))

# Crypto-shredded key scopes, kept outside the database so a restore can replay them (core/erasure_log.py).
# In production, a volume of its own that the backups do not restore over.
ERASURE_LOG_PATH = os.environ.get("ERASURE_LOG_PATH", str(VAR_DIR / "erasure-log.jsonl"))

# /metrics needs this bearer token; without one it answers only on loopback (portal/health.py).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
# JSON lines in production (request id, organisation, actor, task and operation ids); text in development.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "core.logging.RequestIdFilter"},
        "redact_tokens": {"()": "core.logging.RedactTokensFilter"},
    },
    "formatters": {
        "standard": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "standard",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {
            "handlers": ["console"], "level": "ERROR", "propagate": False, "filters": ["redact_tokens"],
        },
        "django.server": {"filters": ["redact_tokens"]},
        "django.security": {"filters": ["redact_tokens"]},
        # At DEBUG it prints whole template contexts (CSRF tokens, personal data): never below INFO.
        "django.template": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}
