"""Corrections survive syncs: recorded (old value encrypted), locked, the sync's different value
refused and reported to staff, a disputed field restricted."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client

from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from core.models import AuditEvent, FieldLock, FieldLockConflict
from core.tenancy import tenant_context
from licensing.models import DirectoryUser
from licensing.models.directory import graph_id_index_of
from licensing.services.directory.upsert import directory_user_upsert_from_graph
from privacy.models import Correction
from privacy.services import request_decisions as decisions
from privacy.services.corrections import conflict_resolve, correction_apply, restriction_set
from privacy.services.requests import request_submit_portal

from .factories import make_officer

pytestmark = pytest.mark.django_db


def _graph_user(graph_id, **overrides):
    return {"id": str(graph_id), "displayName": "Ana Gracia", "userPrincipalName": "ana@contoso.example",
            "mail": "ana@contoso.example", "jobTitle": "Buyer", "usageLocation": "US", "accountEnabled": True,
            **overrides}


def _sync(org, *users):
    with tenant_context(org):
        return directory_user_upsert_from_graph(organization=org, users=list(users))


def _user(org, graph_id):
    with tenant_context(org):
        return DirectoryUser.objects.for_org(org).get(graph_id_index=graph_id_index_of(graph_id))


def test_a_correction_stands_through_a_directory_sync():
    org, officer, graph_id = OrganizationFactory(), make_officer(), uuid.uuid4()
    _sync(org, _graph_user(graph_id, displayName="Ana Gracia"))
    target = _user(org, graph_id)
    correction_apply(organization=org, model_label="licensing.directoryuser", object_id=target.pk,
                     field_name="display_name", new_value="Ana García", reason="Subject asked: accents dropped",
                     actor=officer)
    # Graph still says the old name and changes the job title: the name stands, the title follows Graph.
    counts = _sync(org, _graph_user(graph_id, displayName="Ana Gracia", jobTitle="Head buyer"))
    assert counts["updated"] == 1
    after = _user(org, graph_id)
    assert after.display_name == "Ana García" and after.job_title == "Head buyer"
    conflict = FieldLockConflict.objects.for_org(org).get()
    assert (conflict.field_name, conflict.source, conflict.occurrences) == ("display_name", "graph directory sync", 1)
    # The same payload again is unchanged (no new conflict); a new different value is one more sighting.
    _sync(org, _graph_user(graph_id, displayName="Ana Gracia", jobTitle="Head buyer"))
    _sync(org, _graph_user(graph_id, displayName="A. Gracia", jobTitle="Head buyer"))
    assert FieldLockConflict.objects.for_org(org).get().occurrences == 2
    assert _user(org, graph_id).display_name == "Ana García"
    # Staff resolve it; the corrected value still stands.
    conflict_resolve(organization=org, conflict_id=conflict.pk, actor=officer)
    assert FieldLockConflict.objects.for_org(org).get().resolved_at is not None
    lock = FieldLock.objects.for_org(org).get()
    restriction_set(organization=org, lock_id=lock.pk, restricted=True, actor=officer)
    assert FieldLock.objects.for_org(org).get().restricted_at is not None  # what it then stops: test_restriction.py
    restriction_set(organization=org, lock_id=lock.pk, restricted=False, actor=officer)
    assert FieldLock.objects.for_org(org).get().restricted_at is None


def test_the_correction_is_recorded_with_the_old_value_encrypted_and_audited():
    org, officer, graph_id = OrganizationFactory(), make_officer(), uuid.uuid4()
    _sync(org, _graph_user(graph_id, mail="old.address@contoso.example"))
    target = _user(org, graph_id)
    correction_apply(organization=org, model_label="licensing.directoryuser", object_id=target.pk,
                     field_name="mail", new_value="new.address@contoso.example", reason="Typo", actor=officer)
    record = Correction.objects.for_org(org).get()
    assert record.old_value == "old.address@contoso.example" and record.new_value == "new.address@contoso.example"
    assert record.corrected_by == officer and record.reason == "Typo"
    with connection.cursor() as cursor:
        cursor.execute("SELECT old_value FROM privacy_correction")
        assert "old.address" not in cursor.fetchone()[0]
    # The blind index follows the corrected value, so lookups find the new address.
    with tenant_context(org):
        assert DirectoryUser.objects.for_org(org).filter(mail_index=_user(org, graph_id).mail_index).count() == 1
    assert AuditEvent.unscoped_objects.filter(action="privacy.correction_applied", actor_id=str(officer.pk)).exists()


def test_only_personal_fields_of_the_organisations_own_rows_can_be_corrected():
    org, other, officer, graph_id = OrganizationFactory(), OrganizationFactory(), make_officer(), uuid.uuid4()
    _sync(org, _graph_user(graph_id))
    target = _user(org, graph_id)
    with pytest.raises(ValidationError):
        correction_apply(organization=other, model_label="licensing.directoryuser", object_id=target.pk,
                         field_name="display_name", new_value="X", reason="r", actor=officer)
    with pytest.raises(ValidationError):
        correction_apply(organization=org, model_label="licensing.directoryuser", object_id=target.pk,
                         field_name="removed_at", new_value="x", reason="r", actor=officer)
    with pytest.raises(ValidationError):
        correction_apply(organization=org, model_label="licensing.directoryuser", object_id=target.pk,
                         field_name="display_name", new_value="X", reason=" ", actor=officer)
    assert not Correction.objects.for_org(org).exists() and not FieldLock.objects.for_org(org).exists()


def test_officer_corrects_from_the_desk_and_resolves_the_conflict():
    membership, graph_id = MembershipFactory(), uuid.uuid4()
    org = membership.organization
    _sync(org, _graph_user(graph_id))
    req = request_submit_portal(user=membership.user, kind="correction", region="eu_uk", organization=org,
                                details="My directory title is wrong", recent_mfa=True)
    officer_user = make_officer()
    decisions.request_approve(request_id=req.pk, actor=officer_user)
    officer = verified_client(Client(), officer_user)
    desk = f"/privacy/console/{req.pk}/"
    missing = officer.post(desk + "correct/", {"correct-person": "nobody@contoso.example", "correct-field": "job_title",
                                               "correct-new_value": "Chief buyer", "correct-reason": "Asked"})
    assert missing.status_code == 409
    officer.post(desk + "correct/", {"correct-person": "ANA@contoso.example", "correct-field": "job_title",
                                     "correct-new_value": "Chief buyer", "correct-reason": "Asked"})
    assert _user(org, graph_id).job_title == "Chief buyer"
    _sync(org, _graph_user(graph_id, jobTitle="Buyer (from HR system)"))
    assert _user(org, graph_id).job_title == "Chief buyer"
    page = officer.get(desk).content.decode()
    assert "Syncs refused on corrected fields" in page and "graph directory sync" in page
    # The desk lists what the request corrected (read in the organisation's context: the page renders after it).
    assert "→ “Chief buyer” (Asked), locked against syncs" in page
    conflict = FieldLockConflict.objects.for_org(org).get()
    officer.post(desk + f"conflicts/{conflict.pk}/resolve/")
    assert FieldLockConflict.objects.for_org(org).get().resolved_at is not None
