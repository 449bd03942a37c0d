import contextlib
import json
import os
import threading
from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import RequestFactory

from accounts.models import StaffRole
from accounts.tests.factories import StaffGrantFactory, UserFactory
from core.audit import Actor, _sign_head, audit_record, latest_checkpoint, verify_chain
from core.audit_anchor import checkpoint_append
from core.models import AuditChainHead, AuditEvent
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
