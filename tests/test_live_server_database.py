"""The live server thread never shares the test thread's database connection (the SQLite "table is locked" flake).

Two threads running statements on one SQLite connection at once fail at random; the browser tests poll pages
while the test thread calls tasks, so they need a connection each (conftest.py: a database file, not memory).
"""

import pytest
from django.db import connection


@pytest.mark.django_db(transaction=True)
def test_the_live_server_thread_has_its_own_connection(live_server):
    assert live_server.thread.connections_override == {}
    if connection.vendor == "sqlite":
        assert not connection.is_in_memory_db()
        assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        assert connection.settings_dict["OPTIONS"]["timeout"] >= 5
