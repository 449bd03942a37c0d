import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connections, transaction
from django.test import RequestFactory

import core.audit as audit_module
from accounts.models import Organization, StaffRole
from accounts.tests.factories import StaffGrantFactory, UserFactory
from core.audit import (
    GENESIS_HASH,
    Actor,
    AuditEntry,
    AuditProblem,
    _sign_head,
    audit_record,
    audit_record_many,
    checkpoint_after_commit,
    latest_checkpoint,
    staff_grants_in_force,
    verify_chain,
)
from core.audit_anchor import checkpoint_append
from core.models import AuditChainHead, AuditEvent
from core.requestid import reset_request_context, set_request_context
from core.tenancy import tenant_context

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(org_a):
    return [
        audit_record(actor=Actor.system("test"), action=f"thing.step{i}", organization=org_a, metadata={"i": i})
        for i in range(1, 7)
    ]


def verify() -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, err.getvalue() + str(exc)
    return 0, out.getvalue()


def test_untouched_chain_verifies(chain):
    code, output = verify()
    assert code == 0
    assert "OK" in output and "6 event(s)" in output
    assert list(verify_chain(batch_size=4)) == []


def test_empty_chain_verifies(db):
    assert verify() == (0, "OK: audit chain intact, 0 event(s) verified; no checkpoint written yet.\n")


@pytest.mark.parametrize("change", [{"metadata": {"i": 99}}, {"action": "thing.innocent"}, {"actor_id": "someone"}])
def test_edited_event_is_named(chain, change):
    AuditEvent.unscoped_objects.filter(sequence=3).update(**change)
    code, output = verify()
    assert code == 1
    assert "event #3: content does not match its hash (edited)" in output
    assert "#4" not in output  # the links after it are intact; only the edited event is blamed


def test_rehashed_edit_is_still_caught_by_the_next_link(chain):
    # Someone who edits an event and recomputes its hash without the key still breaks the chain.
    AuditEvent.unscoped_objects.filter(sequence=3).update(action="thing.innocent", hash="f" * 64)
    code, output = verify()
    assert code == 1
    assert "event #3" in output and "event #4: previous-hash link broken" in output


def test_deleted_event_in_the_middle_is_named(chain):
    AuditEvent.unscoped_objects.filter(sequence=4).delete()
    code, output = verify()
    assert code == 1
    assert "event #4: missing (deleted)" in output
    assert "event #5: previous-hash link broken" in output


def test_truncation_is_detected(chain):
    AuditEvent.unscoped_objects.filter(sequence__gte=5).delete()
    code, output = verify()
    assert code == 1
    assert "event #5: missing (chain truncated)" in output
    assert "event #6: missing (chain truncated)" in output


def test_forged_head_is_detected(chain):
    # Truncate and move the head back to the last surviving event, without the HMAC key.
    AuditEvent.unscoped_objects.filter(sequence__gte=5).delete()
    survivor = AuditEvent.unscoped_objects.get(sequence=4)
    AuditChainHead.objects.filter(pk=1).update(sequence=4, hash=survivor.hash)
    code, output = verify()
    assert code == 1
    assert "event #4: chain head signature invalid" in output


def test_audit_admin_is_read_only_and_shows_only_granted_organisations(chain, org_a):
    model_admin = admin.site._registry[AuditEvent]
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    # No grant, superuser or not: nothing (the admin views run in the grants' tenant context).
    assert not model_admin.has_view_permission(request, chain[0])
    with tenant_context(org_a):
        assert model_admin.get_queryset(request).count() == 0

    request = RequestFactory().get("/admin/")
    request.user = StaffGrantFactory(organization=org_a, roles=[StaffRole.SECURITY_RESPONDER],
                                     staff__is_superuser=True).staff
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, chain[0])
    assert not model_admin.has_delete_permission(request, chain[0])
    assert model_admin.has_view_permission(request, chain[0])
    with tenant_context(org_a):
        assert model_admin.get_queryset(request).count() == 6
    assert "action" in model_admin.get_readonly_fields(request, chain[0])


# The anchor outside the database (core/audit_anchor.py): what a database superuser cannot undo.


@pytest.fixture
def committed_chain(org_a, django_capture_on_commit_callbacks):
    """Six events, each in its own committed transaction, so each commit writes a checkpoint."""
    events = []
    for i in range(1, 7):
        with django_capture_on_commit_callbacks(execute=True):
            events.append(
                audit_record(actor=Actor.system("test"), action=f"thing.step{i}", organization=org_a, metadata={"i": i})
            )
    return events


def _checkpoint_lines(settings) -> list[dict]:
    return [json.loads(line) for line in settings.AUDIT_CHECKPOINT_PATH.read_text().splitlines()]


def test_each_commit_writes_one_signed_checkpoint_of_the_head(committed_chain, settings):
    lines = _checkpoint_lines(settings)
    assert [line["sequence"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert [line["hash"] for line in lines] == [event.hash for event in committed_chain]
    checkpoint = latest_checkpoint()
    assert (checkpoint.sequence, checkpoint.hash, checkpoint.line) == (6, committed_chain[-1].hash, 6)
    code, output = verify()
    assert code == 0
    assert "6 event(s) verified; reaches checkpoint #6 of " in output


def test_a_batch_of_events_in_one_transaction_writes_one_checkpoint(
    org_a, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(3):
            audit_record(actor=Actor.system("test"), action=f"batch.{i}", organization=org_a)
    assert [line["sequence"] for line in _checkpoint_lines(settings)] == [3]


def test_rolled_back_events_write_no_checkpoint(org_a, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        audit_record(actor=Actor.system("test"), action="never.committed", organization=org_a)
    assert len(callbacks) == 1
    assert not settings.AUDIT_CHECKPOINT_PATH.exists()


def test_a_rolled_back_newest_event_is_never_anchored(org_a, settings, django_capture_on_commit_callbacks):
    # The checkpoint is the head the transaction's newest event left, not read back after the commit:
    # an event rolled back with its savepoint must never be what the anchor claims.
    with django_capture_on_commit_callbacks(execute=True):
        kept = audit_record(actor=Actor.system("test"), action="kept", organization=org_a)
        with contextlib.suppress(RuntimeError), transaction.atomic():
            audit_record(actor=Actor.system("test"), action="rolled.back", organization=org_a)
            raise RuntimeError("the caller gives up")
    anchored = _checkpoint_lines(settings) if settings.AUDIT_CHECKPOINT_PATH.exists() else []
    assert {line["hash"] for line in anchored} <= {kept.hash}  # at most what was committed
    with django_capture_on_commit_callbacks(execute=True):
        later = audit_record(actor=Actor.system("test"), action="later", organization=org_a)
    assert later.sequence == kept.sequence + 1
    assert (latest_checkpoint().sequence, latest_checkpoint().hash) == (later.sequence, later.hash)
    assert verify()[0] == 0


def test_a_checkpoint_is_readable_at_once_and_synced_to_disk_off_the_request(settings, monkeypatch):
    path = settings.AUDIT_CHECKPOINT_PATH
    real_fsync, synced_by, ours_synced = os.fsync, [], threading.Event()

    def fsync(descriptor):
        real_fsync(descriptor)
        if os.readlink(f"/proc/self/fd/{descriptor}") == str(path):
            synced_by.append(threading.current_thread().name)
            ours_synced.set()

    monkeypatch.setattr(os, "fsync", fsync)
    checkpoint_append(key=b"k" * 32, sequence=1, head_hash="a" * 64, sync=False)
    assert json.loads(path.read_text())["sequence"] == 1  # in the file before the caller goes on
    assert ours_synced.wait(timeout=60)
    assert synced_by == ["audit-checkpoint-sync"]  # never on the caller's thread


def test_deleting_everything_is_detected(committed_chain):
    # A database superuser deletes every event and the head: inside the database nothing is left to compare.
    AuditEvent.unscoped_objects.all().delete()
    AuditChainHead.objects.all().delete()
    code, output = verify()
    assert code == 1
    assert "the chain is empty but the checkpoint of " in output
    assert "recorded event #6 (the chain was deleted)" in output


def test_truncating_and_restoring_an_old_head_is_detected(committed_chain):
    # Keep the head row as it was after event 4 (validly signed), remove 5 and 6, put the old head back.
    AuditEvent.unscoped_objects.filter(sequence__gte=5).delete()
    old = AuditChainHead.objects.get(pk=1)
    old.sequence, old.hash = 4, committed_chain[3].hash
    old.signature = _sign_head(4, old.hash)
    old.save()
    assert [str(p) for p in verify_chain() if "checkpoint" not in str(p)] == []  # consistent inside the database
    code, output = verify()
    assert code == 1
    assert "event #6: missing: the chain ends at event #4 but the checkpoint of " in output
    assert "(the tail was removed and an older head put back)" in output


def test_a_rewritten_chain_no_longer_matches_the_checkpoint(committed_chain):
    AuditEvent.unscoped_objects.filter(sequence=6).update(hash="a" * 64)
    AuditChainHead.objects.filter(pk=1).update(hash="a" * 64)
    code, output = verify()
    assert code == 1
    assert "event #6: hash differs from the checkpoint of " in output
    assert "(the chain was rewritten)" in output


def test_a_chain_beyond_the_checkpoint_verifies(committed_chain, org_a):
    audit_record(actor=Actor.system("test"), action="not.yet.committed", organization=org_a)
    assert verify()[0] == 0
    assert latest_checkpoint().sequence == 6


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda line: {**line, "sequence": 9}, "line 6 signature invalid (checkpoint file was tampered with)"),
        (lambda line: {**line, "hash": "b" * 64}, "checkpoint line 6 signature invalid"),
        (lambda line: {**line, "at": "2020-01-01T00:00:00+00:00"}, "checkpoint line 6 signature invalid"),
        (lambda line: {k: v for k, v in line.items() if k != "signature"}, "checkpoint line 6 is unreadable"),
    ],
)
def test_a_tampered_checkpoint_line_is_named_and_ignored(committed_chain, settings, tamper, message):
    lines = _checkpoint_lines(settings)
    lines[-1] = tamper(lines[-1])
    settings.AUDIT_CHECKPOINT_PATH.write_text("".join(json.dumps(line) + "\n" for line in lines) + "\n")
    code, output = verify()
    assert code == 1
    assert message in output
    assert latest_checkpoint().sequence == 5  # the forged line does not count


def test_an_unwritable_checkpoint_is_logged_and_the_commit_stands(
    org_a, settings, caplog, django_capture_on_commit_callbacks
):
    settings.AUDIT_CHECKPOINT_PATH.mkdir(parents=True)  # a directory where the file should be
    with django_capture_on_commit_callbacks(execute=True):
        event = audit_record(actor=Actor.system("test"), action="still.recorded", organization=org_a)
    assert AuditEvent.unscoped_objects.filter(pk=event.pk).exists()
    [record] = [r for r in caplog.records if r.name == "core.audit"]
    assert record.getMessage() == "audit checkpoint not written"
    assert (record.sequence, record.path) == (event.sequence, str(settings.AUDIT_CHECKPOINT_PATH))



def _problems() -> list[str]:
    return [str(problem) for problem in verify_chain()]


def test_two_deleted_events_in_a_row_are_both_named(chain):
    AuditEvent.unscoped_objects.filter(sequence__in=[3, 4]).delete()
    assert _problems() == [
        "event #3: missing (deleted)",
        "event #4: missing (deleted)",
        "event #5: previous-hash link broken (an earlier event was altered or removed)",
    ]


def test_a_missing_head_is_named(chain):
    AuditChainHead.objects.all().delete()
    assert _problems() == ["event #6: chain head is missing"]


def test_a_head_signed_for_a_different_hash_is_named(chain):
    # Whoever holds the key re-signs a head whose hash is not the newest event's.
    AuditChainHead.objects.filter(pk=1).update(hash="c" * 64, signature=_sign_head(6, "c" * 64))
    assert _problems() == ["event #6: newest event does not match the chain head"]


def test_truncation_names_each_missing_event_exactly(chain):
    AuditEvent.unscoped_objects.filter(sequence__gte=5).delete()
    assert _problems() == ["event #5: missing (chain truncated)", "event #6: missing (chain truncated)"]


def test_the_anchor_problems_are_worded_exactly(committed_chain):
    at = latest_checkpoint().at.isoformat()
    AuditEvent.unscoped_objects.filter(sequence__gte=5).delete()
    AuditChainHead.objects.filter(pk=1).update(
        sequence=4, hash=committed_chain[3].hash, signature=_sign_head(4, committed_chain[3].hash)
    )
    assert _problems() == [
        f"event #6: missing: the chain ends at event #4 but the checkpoint of {at} recorded event #6 "
        "(the tail was removed and an older head put back)"
    ]
    AuditEvent.unscoped_objects.all().delete()
    AuditChainHead.objects.all().delete()
    assert _problems() == [f"the chain is empty but the checkpoint of {at} recorded event #6 (the chain was deleted)"]


def test_a_deleted_checkpointed_event_is_blamed_once(committed_chain, org_a):
    # The chain goes on past the checkpoint; the checkpointed event itself is gone: a deletion, not a rewrite.
    audit_record(actor=Actor.system("test"), action="after.checkpoint", organization=org_a)
    AuditEvent.unscoped_objects.filter(sequence=6).delete()
    assert _problems() == [
        "event #6: missing (deleted)",
        "event #7: previous-hash link broken (an earlier event was altered or removed)",
    ]



def test_actors_name_their_kind_and_id():
    user, key, grant = SimpleNamespace(pk=7), SimpleNamespace(pk="k-1"), SimpleNamespace(pk="g-9")
    assert Actor.user(user) == Actor(AuditEvent.ActorType.USER, "7", {})
    assert Actor.api_key(key) == Actor(AuditEvent.ActorType.API_KEY, "k-1", {})
    assert Actor.staff(user) == Actor(AuditEvent.ActorType.STAFF, "7", {})
    assert Actor.staff(user, grant) == Actor(AuditEvent.ActorType.STAFF, "7", {"grant": "g-9"})
    assert Actor.system("billing") == Actor(AuditEvent.ActorType.SYSTEM, "billing", {})


# What each event and the head are signed over: chains written by earlier releases must keep verifying,
# so the canonical form and the key's decoding are fixed, not whatever this release happens to compute.


def _expected_hash(key: bytes, previous_hash: str, event: AuditEvent) -> str:
    body = {
        "sequence": event.sequence,
        "occurred_at": event.occurred_at.isoformat(),
        "organization": str(event.organization_id or ""),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "ip_address": event.ip_address or "",
        "request_id": event.request_id,
        "metadata": event.metadata,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hmac.new(key, previous_hash.encode() + b"|" + canonical, hashlib.sha256).hexdigest()


def test_an_event_records_its_context_and_is_hashed_over_the_documented_canonical_form(org_a, settings):
    key = secrets.token_bytes(32)
    settings.AUDIT_HMAC_KEY = base64.b64encode(key).decode()
    tokens = set_request_context("req-42", "203.0.113.7")
    try:
        first = audit_record(actor=Actor.system("test"), action="first", organization=org_a)
        event = audit_record(
            actor=Actor.user(SimpleNamespace(pk=7)),
            action="thing.changed",
            organization=org_a,
            target=org_a,
            metadata={"z": "last", "a": [1, 2]},
        )
    finally:
        reset_request_context(tokens)
    stored = AuditEvent.unscoped_objects.get(pk=event.pk)
    assert (stored.target_type, stored.target_id) == (type(org_a).__name__, str(org_a.pk))
    assert (stored.ip_address, stored.request_id) == ("203.0.113.7", "req-42")
    assert (stored.actor_type, stored.actor_id, stored.organization_id) == ("user", "7", org_a.pk)
    assert stored.previous_hash == first.hash
    assert event.hash == _expected_hash(key, first.hash, event)
    assert first.hash == _expected_hash(key, GENESIS_HASH, first)
    head = AuditChainHead.objects.get(pk=1)
    assert (head.sequence, head.hash) == (event.sequence, event.hash)
    assert head.signature == hmac.new(key, f"head|{event.sequence}|{event.hash}".encode(), hashlib.sha256).hexdigest()
    assert _problems() == []


def test_outside_a_request_an_event_has_no_address_nor_request_id_and_no_target(org_a):
    event = audit_record(actor=Actor.system("test"), action="background", organization=org_a)
    stored = AuditEvent.unscoped_objects.get(pk=event.pk)
    assert (stored.ip_address, stored.request_id, stored.target_type, stored.target_id) == (None, "", "", "")


def test_a_key_that_is_not_base64_is_used_as_its_own_bytes(org_a, settings):
    # Not read leniently either: without its "-" and "!" it would be valid base64 ("auditkey").
    settings.AUDIT_HMAC_KEY = "audit-key!"
    event = audit_record(actor=Actor.system("test"), action="raw.key", organization=org_a)
    assert event.hash == _expected_hash(b"audit-key!", GENESIS_HASH, event)
    assert _problems() == []


def test_during_a_rotation_the_retiring_key_still_verifies_and_new_events_use_the_new_one(chain, org_a, settings):
    old = settings.AUDIT_HMAC_KEY
    settings.AUDIT_HMAC_KEY = base64.b64encode(b"n" * 32).decode()
    assert "event #1: content does not match its hash (edited)" in _problems()
    settings.AUDIT_HMAC_PREVIOUS_KEY = old
    assert _problems() == []
    event = audit_record(actor=Actor.system("test"), action="after.rotation", organization=org_a)
    assert event.hash == _expected_hash(b"n" * 32, chain[-1].hash, event)
    settings.AUDIT_HMAC_PREVIOUS_KEY = ""
    assert "event #7: content does not match its hash (edited)" not in _problems()


def test_many_entries_are_chained_in_order_with_one_checkpoint_of_the_last(
    org_a, org_b, settings, django_capture_on_commit_callbacks
):
    key = secrets.token_bytes(32)
    settings.AUDIT_HMAC_KEY = base64.b64encode(key).decode()
    first = audit_record(actor=Actor.system("test"), action="before", organization=org_a)
    entries = [
        AuditEntry("batch.one", org_a, org_b, {"n": 1}),
        AuditEntry("batch.none"),
        AuditEntry("batch.two", org_b.pk),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        events = audit_record_many(actor=Actor.system("billing"), entries=entries)
    stored = list(AuditEvent.unscoped_objects.filter(sequence__gt=first.sequence).order_by("sequence"))
    assert [e.sequence for e in stored] == [2, 3, 4]
    assert [e.action for e in stored] == ["batch.one", "batch.none", "batch.two"]
    assert [e.organization_id for e in stored] == [org_a.pk, None, org_b.pk]
    assert [(e.target_type, e.target_id) for e in stored] == [(type(org_b).__name__, str(org_b.pk)), ("", ""), ("", "")]
    assert [e.metadata for e in stored] == [{"n": 1}, {}, {}]
    assert [e.previous_hash for e in stored] == [first.hash, events[0].hash, events[1].hash]
    assert [e.hash for e in stored] == [e.hash for e in events]
    assert [e.hash for e in stored] == [_expected_hash(key, e.previous_hash, e) for e in stored]
    head = AuditChainHead.objects.get(pk=1)
    assert (head.sequence, head.hash) == (4, events[-1].hash)
    assert head.signature == _sign_head(4, events[-1].hash)
    assert [line["sequence"] for line in _checkpoint_lines(settings)] == [4]
    assert (latest_checkpoint().sequence, latest_checkpoint().hash) == (4, events[-1].hash)
    assert _problems() == []


def test_no_entries_write_nothing(db, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert audit_record_many(actor=Actor.system("test"), entries=[]) == []
    assert callbacks == []
    assert not AuditEvent.unscoped_objects.exists()
    assert not AuditChainHead.objects.exists()


def test_actor_metadata_is_kept_and_the_entry_metadata_wins(org_a):
    actor = Actor(AuditEvent.ActorType.SYSTEM, "job", {"run": "r-1", "note": "actor"})
    event = audit_record(actor=actor, action="merged", organization=org_a, metadata={"note": "entry"})
    assert AuditEvent.unscoped_objects.get(pk=event.pk).metadata == {"run": "r-1", "note": "entry"}


def test_staff_events_name_the_grant_in_force_for_their_organisation_only(org_a, org_b):
    staff, user = Actor.staff(SimpleNamespace(pk=5)), Actor.user(SimpleNamespace(pk=6))
    with staff_grants_in_force({str(org_a.pk): "grant-a"}):
        in_force = audit_record(actor=staff, action="staff.read", organization=org_a)
        other_org = audit_record(actor=staff, action="staff.read", organization=org_b)
        no_org = audit_record(actor=staff, action="staff.read")
        not_staff = audit_record(actor=user, action="user.read", organization=org_a)
        own = audit_record(actor=Actor.staff(SimpleNamespace(pk=5), SimpleNamespace(pk="own")), action="x",
                           organization=org_a)
        explicit = audit_record(actor=staff, action="y", organization=org_a, metadata={"grant": "given"})
    outside = audit_record(actor=staff, action="staff.read", organization=org_a)
    assert in_force.metadata == {"grant": "grant-a"}
    assert other_org.metadata == no_org.metadata == not_staff.metadata == outside.metadata == {}
    assert own.metadata == {"grant": "own"}
    assert explicit.metadata == {"grant": "given"}
    with staff_grants_in_force({str(org_a.pk): ""}):
        assert audit_record(actor=staff, action="z", organization=org_a).metadata == {}


def test_a_head_already_anchored_by_this_process_is_not_written_twice(org_a, settings):
    event = audit_record(actor=Actor.system("test"), action="once", organization=org_a)
    checkpoint_after_commit("default", event.sequence, event.hash)
    checkpoint_after_commit("default", event.sequence, event.hash)
    checkpoint_after_commit("default", event.sequence - 1, "e" * 64)
    assert [(line["sequence"], line["hash"]) for line in _checkpoint_lines(settings)] == [(event.sequence, event.hash)]


def test_an_earlier_event_of_the_transaction_leaves_the_checkpoint_to_the_newest(org_a, settings):
    events = [audit_record(actor=Actor.system("test"), action=f"e{i}", organization=org_a) for i in range(2)]
    checkpoint_after_commit("default", events[0].sequence, events[0].hash)
    assert not settings.AUDIT_CHECKPOINT_PATH.exists()
    checkpoint_after_commit("default", events[1].sequence, events[1].hash)
    assert [line["sequence"] for line in _checkpoint_lines(settings)] == [events[1].sequence]


def test_a_problem_without_an_event_reads_as_its_words():
    assert str(AuditProblem(None, "checkpoint line 2 is unreadable")) == "checkpoint line 2 is unreadable"
    assert str(AuditProblem(0, "missing (deleted)")) == "event #0: missing (deleted)"


def test_a_long_chain_verifies_across_batches_and_names_problems_in_each(org_a):
    for i in range(7):
        audit_record(actor=Actor.system("test"), action=f"long.{i}", organization=org_a)
    assert list(verify_chain(batch_size=2)) == []
    AuditEvent.unscoped_objects.filter(sequence__in=[2, 6]).update(action="forged")
    assert [str(p) for p in verify_chain(batch_size=2)] == [
        "event #2: content does not match its hash (edited)",
        "event #6: content does not match its hash (edited)",
    ]


def test_a_deleted_first_event_is_named(chain):
    AuditEvent.unscoped_objects.filter(sequence=1).delete()
    assert _problems() == [
        "event #1: missing (deleted)",
        "event #2: previous-hash link broken (an earlier event was altered or removed)",
    ]


def test_without_a_retiring_key_a_hash_made_with_an_empty_key_is_not_accepted(chain):
    forged = AuditEvent.unscoped_objects.get(sequence=3)
    forged.action = "thing.forged"
    AuditEvent.unscoped_objects.filter(sequence=3).update(
        action=forged.action, hash=_expected_hash(b"", forged.previous_hash, forged)
    )
    assert "event #3: content does not match its hash (edited)" in _problems()


def test_a_connection_that_recorded_nothing_in_this_process_still_anchors_a_commit(chain, settings):
    del connections["default"].audit_latest_sequence
    checkpoint_after_commit("default", chain[-1].sequence, chain[-1].hash)
    assert [line["sequence"] for line in _checkpoint_lines(settings)] == [chain[-1].sequence]


def test_the_commit_writes_its_checkpoint_without_syncing_the_disk_on_the_callers_thread(
    org_a, settings, monkeypatch, django_capture_on_commit_callbacks
):
    path, real_fsync, synced_by = settings.AUDIT_CHECKPOINT_PATH, os.fsync, []

    def fsync(descriptor):
        if os.readlink(f"/proc/self/fd/{descriptor}") == str(path):
            synced_by.append(threading.current_thread())
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    with django_capture_on_commit_callbacks(execute=True):
        event = audit_record(actor=Actor.system("test"), action="staff.read", organization=org_a)
    assert [line["sequence"] for line in _checkpoint_lines(settings)] == [event.sequence]
    assert threading.current_thread() not in synced_by


def test_two_entries_are_both_written(org_a):
    entries = [AuditEntry("pair.one", org_a), AuditEntry("pair.two")]
    events = audit_record_many(actor=Actor.system("test"), entries=entries)
    stored = list(AuditEvent.unscoped_objects.order_by("sequence").values_list("sequence", "action", "hash"))
    assert stored == [(1, "pair.one", events[0].hash), (2, "pair.two", events[1].hash)]
    assert AuditChainHead.objects.get(pk=1).sequence == 2
    assert _problems() == []


def test_a_failed_append_undoes_the_callers_write_even_when_the_caller_carries_on(org_a, monkeypatch):
    # The audit event and the change it records commit together or not at all: catching the error must not
    # leave the change committed without its event.
    def fail(*args, **kwargs):
        raise DatabaseError("the insert failed")

    monkeypatch.setattr(audit_module, "_append", fail)
    with transaction.atomic():
        Organization.objects.filter(pk=org_a.pk).update(slug="renamed")
        with contextlib.suppress(DatabaseError):
            audit_record(actor=Actor.system("test"), action="org.renamed", organization=org_a)
    assert Organization.objects.get(pk=org_a.pk).slug == "org-a"
