"""Kept connections are checked between requests without a round trip, and replaced when the server ended them
(core/postgresql/base.py, docs/decisions/033)."""

from __future__ import annotations

import select

import psycopg
import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the health check is PostgreSQL's")


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_quiet_kept_connection_is_reused_without_select_1(monkeypatch):
    pid = backend_pid()
    checks = []
    usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or usable())
    connection.close_if_unusable_or_obsolete()  # what the end of a request does: the next one checks again
    assert backend_pid() == pid
    assert checks == []


def test_a_connection_the_server_ended_is_replaced_before_the_next_request_uses_it(monkeypatch):
    pid = backend_pid()
    checks = []
    usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or usable())
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's goodbye reaches the socket (no time is asserted: this only waits for it).
    select.select([connection.connection.fileno()], [], [], 30)
    connection.close_if_unusable_or_obsolete()
    assert backend_pid() != pid  # not an error: the dropped connection was noticed and replaced
    assert checks == [1]  # the socket spoke, so Django's own check ran and failed
