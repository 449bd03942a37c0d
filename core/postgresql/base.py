"""Django's PostgreSQL backend, with the health check of a kept connection done without a round trip.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` on every kept connection at its first use in each
request, so that a connection the server dropped (a restart, ``pg_terminate_backend``, an idle timeout)
is replaced instead of failing the request. That is one round trip per connection per request: on an
API call, two of about nine (docs/performance.md).

A connection the server ended has told the client so: the server sends its error and closes the socket,
so the socket of an idle connection becomes readable. A connection between requests is idle (nothing is
in flight and nothing was left unread), so a readable socket means the server said something, and only
then is Django's ``SELECT 1`` sent. A socket that is quiet is taken as healthy, as after ``SELECT 1``
(docs/decisions/033-request-round-trips.md). A connection broken without the server saying so (a
network cut) is found by the first statement either way.

It also hands out a cursor that binds its parameters on the server (``server_bound_cursor``), for a statement
whose one parameter is a large document: see there.
"""

from __future__ import annotations

import select
from contextlib import contextmanager

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and self._socket_is_quiet()
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _socket_is_quiet(self) -> bool:
        connection = self.connection
        if connection.closed or connection.broken or connection.pgconn.status != pq.ConnStatus.OK:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    @contextmanager
    def server_bound_cursor(self):
        """A cursor whose parameters travel beside the statement (the extended protocol), not quoted into it.

        Django's cursors bind on the client (its default, kept for every ORM query): psycopg escapes each
        value into the statement's text and the server lexes it back out. For a parameter of megabytes (a
        bulk insert's page of rows as one JSON document, ``core.fields.encrypted_bulk_insert``) that is work
        done twice for nothing: psycopg's quoting was about 4% of a first directory sync's samples (its wall
        time did not move measurably, docs/performance.md, ninth round). The cursor is Django's own
        server-binding class, wrapped as any other (errors translated, the statement logged where
        statements are logged).
        """
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            cursor = self._prepare_cursor(base.ServerBindingCursor(self.connection))
        with cursor:
            yield cursor
