from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from core.audit import Actor, audit_record, verify_chain
from core.models import AuditChainHead, AuditEvent

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
    assert verify() == (0, "OK: audit chain intact, 0 event(s) verified.\n")


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


def test_audit_admin_is_read_only(chain, django_user_model):
    model_admin = admin.site._registry[AuditEvent]
    request = RequestFactory().get("/admin/")
    request.user = django_user_model(is_staff=True, is_superuser=True)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, chain[0])
    assert not model_admin.has_delete_permission(request, chain[0])
    assert model_admin.has_view_permission(request, chain[0])
    assert model_admin.get_queryset(request).count() == 6
    assert "action" in model_admin.get_readonly_fields(request, chain[0])
