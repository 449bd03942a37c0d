"""IP addresses, browsers and device ids: encrypted at rest, found through keyed indexes.

See docs/decisions/026-nothing-personal-in-plaintext.md.
"""

import hashlib
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from accounts import signin
from accounts.models import SignInEvent, UserSession
from accounts.signin import axes_client_ip
from accounts.tests.factories import UserFactory
from core.audit import Actor, audit_record, verify_chain
from core.blind_index import ip_index, network_index, network_of, normalise_ip
from core.crypto import DecryptionError, keyring
from core.models import AuditEvent
from core.requestid import reset_request_context, set_request_context

pytestmark = pytest.mark.django_db


def raw(model, pk, column):
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_ip_index_is_keyed_and_one_per_client():
    assert ip_index("203.0.113.9") == ip_index(" 203.0.113.9 ") == ip_index("::ffff:203.0.113.9")
    assert ip_index("203.0.113.9") != ip_index("203.0.113.10")
    # Keyed: not the plain hash anyone could compute over all 2^32 addresses.
    assert ip_index("203.0.113.9") != hashlib.sha256(b"203.0.113.9").hexdigest()
    assert ip_index("2001:DB8::1") == ip_index("2001:db8:0:0::1")
    assert ip_index("") is None and ip_index(None) is None and ip_index("not an address") is None


def test_network_index_groups_the_slash_24_and_slash_48():
    assert network_of("203.0.113.9") == "203.0.113.0/24"
    assert network_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert network_index("203.0.113.9") == network_index("203.0.113.250") == network_index("::ffff:203.0.113.1")
    assert network_index("203.0.113.9") != network_index("203.0.114.9")
    assert network_index("2001:db8:1:ffff::1") == network_index("2001:db8:1::2")
    assert network_index("2001:db8:2::1") != network_index("2001:db8:1::1")
    # Different purposes: an address's exact index never equals its network's.
    assert network_index("203.0.113.0") != ip_index("203.0.113.0")


def test_normalised_text_is_what_the_address_column_always_held():
    assert normalise_ip("::ffff:198.51.100.7") == "::ffff:198.51.100.7"
    assert normalise_ip("2001:DB8:0:0::1") == "2001:db8::1"


def test_axes_counts_failures_under_the_keyed_index(rf):
    request = rf.post("/accounts/login/", REMOTE_ADDR="192.0.2.7")
    assert axes_client_ip(request) == ip_index("192.0.2.7")


@pytest.mark.parametrize("ip", ["203.0.113.9", "2001:db8::1", "::ffff:198.51.100.7", None])
def test_audit_chain_verifies_over_the_decrypted_address(ip):
    tokens = set_request_context("req-ip-test", ip)
    try:
        events = [audit_record(actor=Actor.system("test"), action=f"thing.{i}") for i in range(3)]
    finally:
        reset_request_context(tokens)
    assert list(verify_chain()) == []
    stored = raw(AuditEvent, events[0].pk, "ip_address")
    if ip is None:
        assert stored is None
    else:
        assert stored.startswith("v1:") and ip not in stored and "203.0.113" not in stored
        assert AuditEvent.unscoped_objects.get(pk=events[0].pk).ip_address == ip


def test_audit_address_moved_to_another_event_fails_to_decrypt():
    tokens = set_request_context("req-ip-move", "203.0.113.9")
    try:
        first, second = (audit_record(actor=Actor.system("test"), action=f"thing.{i}") for i in range(2))
    finally:
        reset_request_context(tokens)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE security_auditevent SET ip_address = %s WHERE id = %s",
            [raw(AuditEvent, first.pk, "ip_address"), second.pk],
        )
    with pytest.raises(DecryptionError):
        list(verify_chain())


def test_sign_in_event_keeps_address_browser_and_device_only_encrypted():
    user = UserFactory()
    event = SignInEvent.objects.create(
        occurred_at=timezone.now(),
        user=user,
        ip_address="198.51.100.23",
        user_agent="MarkerBrowser/9",
        device_id="device-marker-123",
        succeeded=False,
        factor="password",
        failure_reason="bad_credentials",
    )
    anonymous = SignInEvent.objects.create(
        occurred_at=timezone.now(),
        user=None,
        ip_address="198.51.100.24",
        user_agent="",
        device_id="device-marker-456",
        succeeded=False,
        factor="password",
        failure_reason="bad_credentials",
    )
    for column, plaintext in (("ip_address", "198.51.100"), ("user_agent", "MarkerBrowser"), ("device_id", "marker")):
        assert plaintext not in raw(SignInEvent, event.pk, column)
        assert plaintext not in raw(SignInEvent, anonymous.pk, column)
    loaded = SignInEvent.objects.get(pk=event.pk)
    assert (loaded.ip_address, loaded.user_agent, loaded.device_id) == (
        "198.51.100.23",
        "MarkerBrowser/9",
        "device-marker-123",
    )
    assert SignInEvent.objects.get(ip_index=ip_index("198.51.100.23")) == event
    assert set(SignInEvent.objects.filter(ip_network_index=network_index("198.51.100.1"))) == {event, anonymous}
    assert (
        SignInEvent.objects.get(device_index=SignInEvent._meta.get_field("device_index").index_of("device-marker-456"))
        == anonymous
    )


def test_session_touch_reencrypts_a_moved_address(monkeypatch):
    user = UserFactory()
    session = UserSession.objects.create(
        user=user, session_key="k" * 32, session_key_hash="h" * 64, ip_address="192.0.2.1", user_agent="Laptop"
    )
    # The touch finds the session by the browser's session-key hash; this request is that browser.
    monkeypatch.setattr(signin, "current_session_hash", lambda request: "h" * 64)
    request = SimpleNamespace(session={}, user=user)  # the middleware touches for a signed-in user only
    tokens = set_request_context("req-touch", "2001:db8:5::7")
    try:
        signin.user_session_touch(request)
    finally:
        reset_request_context(tokens)
    session = UserSession.objects.get(pk=session.pk)
    assert session.ip_address == "2001:db8:5::7" and session.user_agent == "Laptop"
    assert session.ip_index == ip_index("2001:db8:5::7")
    assert session.ip_network_index == network_index("2001:db8:5:1::1")
    pk = session.pk.hex if connection.vendor == "sqlite" else session.pk
    assert "2001:db8" not in raw(UserSession, pk, "ip_address")


AUDIT_BEFORE = [("core", "0003_field_lock_restriction_and_conflicts")]
AUDIT_AFTER = [("core", "0004_encrypt_audit_ip_address")]


@pytest.mark.django_db(transaction=True)
def test_chain_written_before_the_migration_verifies_after_it_and_back():
    """Events hashed over plaintext addresses (as the old inet column held them) still verify once the
    column is encrypted, with new events appended after; and the migration reverses."""
    from core.audit import GENESIS_HASH, _sign_head, compute_hash

    executor = MigrationExecutor(connection)
    executor.migrate(AUDIT_BEFORE)
    old_apps = executor.loader.project_state(AUDIT_BEFORE).apps
    OldEvent = old_apps.get_model("core", "AuditEvent")
    OldHead = old_apps.get_model("core", "AuditChainHead")
    previous = GENESIS_HASH
    addresses = ["203.0.113.9", "2001:db8::1", None, "::ffff:198.51.100.7"]
    for sequence, ip in enumerate(addresses, start=1):
        event = OldEvent(
            sequence=sequence,
            occurred_at=timezone.now(),
            actor_type="system",
            actor_id="test",
            action="thing.before",
            ip_address=ip,
            request_id="",
            metadata={},
            previous_hash=previous,
        )
        event.hash = compute_hash(previous, event)
        event.save()
        previous = event.hash
    OldHead.objects.update_or_create(
        pk=1, defaults={"sequence": 4, "hash": previous, "signature": _sign_head(4, previous)}
    )
    executor = MigrationExecutor(connection)
    executor.migrate(AUDIT_AFTER)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    keyring.clear()

    assert "203.0.113.9" not in raw(AuditEvent, AuditEvent.unscoped_objects.get(sequence=1).pk, "ip_address")
    tokens = set_request_context("req-after", "192.0.2.44")
    try:
        audit_record(actor=Actor.system("test"), action="thing.after")
    finally:
        reset_request_context(tokens)
    assert list(verify_chain()) == []
    assert [e.ip_address for e in AuditEvent.unscoped_objects.order_by("sequence")] == [*addresses, "192.0.2.44"]

    executor = MigrationExecutor(connection)
    executor.migrate(AUDIT_BEFORE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT ip_address FROM security_auditevent WHERE sequence = 1")
        assert str(cursor.fetchone()[0]) == "203.0.113.9"
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
