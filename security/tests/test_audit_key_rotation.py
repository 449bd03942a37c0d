"""Rotating the audit chain's HMAC key (docs/decisions/027-hardening.md): the old key is accepted while
the new one is rolled out, `rotate_audit_key` re-chains everything under the new key, and afterwards the
chain verifies with the new key alone; a tampered chain is refused rather than laundered."""

import base64
import secrets
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.audit import Actor, RekeyRefused, audit_record, chain_rekey, verify_chain
from core.models import AuditEvent

pytestmark = pytest.mark.django_db


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def committed_chain(org_a, django_capture_on_commit_callbacks):
    for i in range(1, 6):
        with django_capture_on_commit_callbacks(execute=True):
            audit_record(actor=Actor.system("test"), action=f"thing.step{i}", organization=org_a, metadata={"i": i})


def _problems() -> list[str]:
    return [str(p) for p in verify_chain()]


def _rotate(django_capture_on_commit_callbacks) -> str:
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("rotate_audit_key", stdout=out)
    return out.getvalue()


def test_full_rotation_leaves_a_chain_that_verifies_with_the_new_key_alone(
    committed_chain, settings, org_a, django_capture_on_commit_callbacks
):
    old = settings.AUDIT_HMAC_KEY
    settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_PREVIOUS_KEY = _new_key(), old
    # Step 1: both keys configured; the old chain verifies and new events use the new key.
    assert _problems() == []
    with django_capture_on_commit_callbacks(execute=True):
        audit_record(actor=Actor.system("test"), action="thing.during_rollout", organization=org_a)
    assert _problems() == []
    # Step 2: re-chain.
    assert "6 event(s) re-chained" in _rotate(django_capture_on_commit_callbacks)
    # Step 3: the old key is gone; everything, checkpoints included, verifies under the new key.
    settings.AUDIT_HMAC_PREVIOUS_KEY = ""
    assert _problems() == []
    assert AuditEvent.unscoped_objects.order_by("-sequence").first().action == "audit.key_rotated"
    with django_capture_on_commit_callbacks(execute=True):
        audit_record(actor=Actor.system("test"), action="thing.after", organization=org_a)
    assert _problems() == []


def test_without_rotation_the_old_chain_fails_under_the_new_key(committed_chain, settings):
    settings.AUDIT_HMAC_KEY = _new_key()
    problems = _problems()
    assert any("content does not match its hash" in p for p in problems)
    assert any("signature invalid" in p for p in problems)


def test_tampering_after_rotation_is_still_named(committed_chain, settings, django_capture_on_commit_callbacks):
    settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_PREVIOUS_KEY = _new_key(), settings.AUDIT_HMAC_KEY
    _rotate(django_capture_on_commit_callbacks)
    settings.AUDIT_HMAC_PREVIOUS_KEY = ""
    AuditEvent.unscoped_objects.filter(sequence=3).update(action="thing.forged")
    assert _problems() == ["event #3: content does not match its hash (edited)"]


def test_a_tampered_chain_is_refused_not_re_keyed(committed_chain, settings, django_capture_on_commit_callbacks):
    AuditEvent.unscoped_objects.filter(sequence=2).update(action="thing.forged")
    before = list(AuditEvent.unscoped_objects.order_by("sequence").values_list("hash", flat=True))
    settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_PREVIOUS_KEY = _new_key(), settings.AUDIT_HMAC_KEY
    with pytest.raises(CommandError, match=r"does not verify; not re-keyed: event #2"):
        _rotate(django_capture_on_commit_callbacks)
    assert list(AuditEvent.unscoped_objects.order_by("sequence").values_list("hash", flat=True)) == before


def test_the_command_needs_the_retiring_key(settings):
    settings.AUDIT_HMAC_PREVIOUS_KEY = ""
    with pytest.raises(CommandError, match="AUDIT_HMAC_PREVIOUS_KEY"):
        call_command("rotate_audit_key")
    settings.AUDIT_HMAC_PREVIOUS_KEY = settings.AUDIT_HMAC_KEY
    with pytest.raises(CommandError, match="nothing to rotate"):
        call_command("rotate_audit_key")


def test_rekeying_returns_how_many_events_it_re_chained_and_records_it(
    committed_chain, settings, django_capture_on_commit_callbacks
):
    settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_PREVIOUS_KEY = _new_key(), settings.AUDIT_HMAC_KEY
    with django_capture_on_commit_callbacks(execute=True):
        assert chain_rekey(batch_size=2) == 5
    event = AuditEvent.unscoped_objects.order_by("-sequence").first()
    assert (event.action, event.actor_type, event.actor_id, event.metadata) == (
        "audit.key_rotated", "system", "audit-key-rotation", {"events": 5}
    )
    settings.AUDIT_HMAC_PREVIOUS_KEY = ""
    assert _problems() == []


def test_a_refusal_names_the_first_twenty_problems(org_a):
    for i in range(22):
        audit_record(actor=Actor.system("test"), action=f"thing.{i}", organization=org_a)
    AuditEvent.unscoped_objects.filter(sequence__lte=21).update(action="thing.forged")
    with pytest.raises(RekeyRefused) as refused:
        chain_rekey()
    assert str(refused.value) == "; ".join(
        f"event #{i}: content does not match its hash (edited)" for i in range(1, 21)
    )
