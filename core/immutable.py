"""Rows the database keeps immutable, and the one way to delete them: the retention purge.

Apps guard rows that must never change once written (issued invoices and their lines: billing's
migration 0007) with triggers that refuse ``UPDATE`` and ``DELETE`` even from raw SQL. Their legal
period still ends: the retention purge deletes them inside :func:`retention_purge_deletes`, which
sets ``app.retention_purge`` for its transaction only (``set_config(..., true)``), so the setting
dies with the commit and cannot leak into another request on a pooled connection.

The application role can set this like any ``app.*`` setting: the triggers stop mistakes, bulk
edits and an operator's stray SQL, not an attacker who already runs SQL as the application
(docs/decisions/029-immutable-billing-documents.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

PURGE_SETTING = "app.retention_purge"


@contextmanager
def retention_purge_deletes() -> Iterator[None]:
    """Inside one transaction, let the immutability triggers admit the retention purge's deletes."""
    with transaction.atomic():
        _set(connection, "on")
        yield
        # A rollback (an error inside) undoes the setting with the savepoint; on success it is cleared
        # here, so an outer transaction goes on guarded.
        _set(connection, "")


def _set(conn, value: str) -> None:
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, true)", [PURGE_SETTING, value])
