"""SQLite state: one connection guarded by a re-entrant lock, WAL journal, emulator clock."""

import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY, domain TEXT NOT NULL UNIQUE COLLATE NOCASE, display_name TEXT NOT NULL,
    kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS consents (
    tenant_id TEXT NOT NULL, app_id TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (tenant_id, app_id));
CREATE TABLE IF NOT EXISTS customers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agreements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, customer_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS agreements_customer ON agreements (customer_id);
CREATE TABLE IF NOT EXISTS carts (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, customer_id TEXT NOT NULL,
    status TEXT NOT NULL, ready_at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer_id);
CREATE INDEX IF NOT EXISTS orders_pending ON orders (status, ready_at);
CREATE TABLE IF NOT EXISTS subscriptions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, customer_id TEXT NOT NULL,
    order_id TEXT NOT NULL, status TEXT NOT NULL, provisioning_id TEXT, term_end TEXT,
    next_charge TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS subscriptions_customer ON subscriptions (customer_id, provisioning_id);
CREATE INDEX IF NOT EXISTS subscriptions_term_end ON subscriptions (status, term_end);
CREATE INDEX IF NOT EXISTS subscriptions_next_charge ON subscriptions (next_charge);
CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, subscription_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS transitions_subscription ON transitions (subscription_id);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, customer_id TEXT NOT NULL, invoice_id TEXT,
    doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_invoice ON ledger (invoice_id, seq);
CREATE TABLE IF NOT EXISTS invoices (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, id TEXT NOT NULL,
    upn TEXT NOT NULL COLLATE NOCASE, mail TEXT COLLATE NOCASE,
    display_name TEXT NOT NULL COLLATE NOCASE, account_enabled INTEGER NOT NULL,
    doc TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS users_id ON users (tenant_id, id);
CREATE UNIQUE INDEX IF NOT EXISTS users_upn ON users (tenant_id, upn);
CREATE INDEX IF NOT EXISTS users_tenant_seq ON users (tenant_id, seq);
CREATE INDEX IF NOT EXISTS users_mail ON users (tenant_id, mail);
CREATE INDEX IF NOT EXISTS users_display_name ON users (tenant_id, display_name);
CREATE TABLE IF NOT EXISTS user_licenses (
    tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, sku_id TEXT NOT NULL,
    disabled_plans TEXT NOT NULL, PRIMARY KEY (tenant_id, user_id, sku_id));
CREATE INDEX IF NOT EXISTS user_licenses_sku ON user_licenses (tenant_id, sku_id);
CREATE TABLE IF NOT EXISTS gdap_relationships (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, customer_tenant_id TEXT NOT NULL,
    display_name TEXT NOT NULL UNIQUE COLLATE NOCASE, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS gdap_customer ON gdap_relationships (customer_tenant_id);
CREATE TABLE IF NOT EXISTS gdap_assignments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, relationship_id TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gdap_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, relationship_id TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fraud_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    subscription_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS fraud_subscription ON fraud_events (subscription_id);
CREATE TABLE IF NOT EXISTS exports (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants (token TEXT PRIMARY KEY, kind TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    request_id TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,
    headers TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (request_id, method, path));
CREATE TABLE IF NOT EXISTS request_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, method TEXT NOT NULL,
    path TEXT NOT NULL, query TEXT NOT NULL, status INTEGER, headers TEXT NOT NULL,
    body TEXT NOT NULL);
"""

# Every table that holds emulated Microsoft state; `reset()` empties them (meta keeps the secret).
STATE_TABLES = (
    "tenants", "consents", "customers", "agreements", "carts", "orders", "subscriptions",
    "transitions", "ledger", "invoices", "users", "user_licenses", "gdap_relationships",
    "gdap_assignments", "gdap_requests", "fraud_events", "exports", "grants", "idempotency",
    "request_log",
)

DEFAULT_SETTINGS = {
    # Integration-sandbox limits (developer/set-up-api-access-in-partner-center.md).
    "sandboxLimits": True,
    "maxCustomers": 75,
    "maxSubscriptionsPerCustomer": 5,
    "maxSeatsPerSubscription": 25,
    # Microsoft provisions asynchronously: each order line gets its subscription this many emulator
    # seconds after checkout, plus a share of the tail (most lines early, a few much later), and
    # the order completes when its last line has. 0 and 0 give instant, completed orders.
    "orderProvisioningSeconds": 2,
    "orderProvisioningTailSeconds": 6,
    # Graph billing export: operation reports "running" this many polls before succeeding.
    "exportPollsBeforeReady": 1,
    # Expired subscriptions keep their seats in subscribedSkus "warning" for this many days.
    "licenseGraceDays": 30,
    "tokenLifetimeSeconds": 3599,
    # PC "GDAP auto extend": not allowed for relationships that contain Global Administrator.
    "gdapAutoExtendWithGlobalAdmin": False,
}

MAX_LOGGED_BODY = 65536


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class State:
    """All emulator state. Use `transaction()` around any read-modify-write sequence."""

    def __init__(self, path: str):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self.lock = threading.RLock()
        self._depth = 0
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        with self.transaction():
            if self.meta("signing_secret") is None:
                self.set_meta("signing_secret", os.environ.get("MSEMULATOR_SIGNING_SECRET")
                              or secrets.token_hex(32))
            if self.meta("clock_offset") is None:
                self.set_meta("clock_offset", 0.0)
        self._clock_offset = float(self.meta("clock_offset"))

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    # -- raw access -------------------------------------------------------------------------
    def rows(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def row(self, sql: str, params: tuple | list = ()) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute(sql, params).fetchone()

    def execute(self, sql: str, params: tuple | list = ()) -> sqlite3.Cursor:
        with self.lock:
            return self.conn.execute(sql, params)

    def executemany(self, sql: str, seq: list) -> None:
        with self.lock:
            self.conn.executemany(sql, seq)

    def doc(self, sql: str, params: tuple | list = ()) -> dict | None:
        found = self.row(sql, params)
        return json.loads(found["doc"]) if found else None

    def docs(self, sql: str, params: tuple | list = ()) -> list[dict]:
        return [json.loads(r["doc"]) for r in self.rows(sql, params)]

    # -- meta, settings, clock --------------------------------------------------------------
    def meta(self, key: str):
        found = self.row("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(found["value"]) if found else None

    def set_meta(self, key: str, value) -> None:
        self.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def settings(self) -> dict:
        return {**DEFAULT_SETTINGS, **(self.meta("settings") or {})}

    def update_settings(self, changes: dict) -> dict:
        unknown = set(changes) - set(DEFAULT_SETTINGS)
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        merged = {**(self.meta("settings") or {}), **changes}
        self.set_meta("settings", merged)
        return self.settings()

    def now(self) -> datetime:
        return utcnow() + timedelta(seconds=self._clock_offset)

    def advance_clock(self, seconds: float) -> datetime:
        with self.transaction():
            self._clock_offset += seconds
            self.set_meta("clock_offset", self._clock_offset)
        return self.now()

    def reset(self) -> None:
        with self.transaction():
            for table in STATE_TABLES:
                self.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self.execute("DELETE FROM meta WHERE key NOT IN ('signing_secret')")
            self.execute("DELETE FROM sqlite_sequence")
            self._clock_offset = 0.0
            self.set_meta("clock_offset", 0.0)

    # -- request log --------------------------------------------------------------------------
    def log_request(self, *, method: str, path: str, query: str, status: int | None,
                    headers: dict, body: str) -> None:
        with self.transaction():
            self.execute(
                "INSERT INTO request_log (ts, method, path, query, status, headers, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (iso(self.now()), method, path, query, status, json.dumps(headers),
                 body[:MAX_LOGGED_BODY]))
