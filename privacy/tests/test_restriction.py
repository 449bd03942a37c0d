"""GDPR Art. 18: a restricted person's data is stored but not processed. The sync writes nothing to
their row, nothing sends their data to Microsoft (assign, reassign, bulk, password reset, a call
queued before the restriction), non-essential reports and disclosures leave them out, and lifting
the restriction ends all of it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.tests.factories import OrganizationFactory
from core.audit import Actor
from core.disclosures import DisclosureRefused, disclosure_record
from core.models import Disclosure, FieldLock, FieldLockConflict
from core.tenancy import tenant_context
from licensing.models import BulkJob, DirectoryUser, LicenseAssignment, TenantSku
from licensing.models.directory import graph_id_index_of
from licensing.selectors.usage import inactive_assignments
from licensing.services import assignments, bulk
from licensing.services.directory.upsert import directory_user_upsert_from_graph
from licensing.services.directory.users import DirectoryActionRefused, directory_user_password_reset
from licensing.services.reassign import license_reassign
from privacy.services.corrections import correction_apply, restriction_set

from .factories import make_officer

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _graph_user(graph_id, name, **overrides):
    return {"id": str(graph_id), "displayName": name, "userPrincipalName": f"{name.split()[0].lower()}@contoso.example",
            "mail": f"{name.split()[0].lower()}@contoso.example", "jobTitle": "Buyer", "usageLocation": "US",
            "accountEnabled": True, **overrides}


@pytest.fixture
def world():
    """An organisation with two directory users, Ana (restricted after a disputed correction) and Ben."""
    org, officer = OrganizationFactory(), make_officer()
    ana_id, ben_id = uuid.uuid4(), uuid.uuid4()
    with tenant_context(org):
        directory_user_upsert_from_graph(organization=org, users=[_graph_user(ana_id, "Ana Gracia"),
                                                                  _graph_user(ben_id, "Ben Okafor")])
        ana = DirectoryUser.objects.for_org(org).get(graph_id_index=graph_id_index_of(ana_id))
        ben = DirectoryUser.objects.for_org(org).get(graph_id_index=graph_id_index_of(ben_id))
        pool = TenantSku.objects.create(organization=org, sku_id=uuid.uuid4(), display_name="E5", purchased=5)
    correction_apply(organization=org, model_label="licensing.directoryuser", object_id=ana.pk,
                     field_name="display_name", new_value="Ana García", reason="Disputed spelling", actor=officer,
                     restrict=True)
    return {"org": org, "officer": officer, "ana": ana, "ben": ben, "ana_id": ana_id, "ben_id": ben_id, "pool": pool}


def _lift(world):
    with tenant_context(world["org"]):
        lock = FieldLock.objects.for_org(world["org"]).get(object_id=str(world["ana"].pk))
    restriction_set(organization=world["org"], lock_id=lock.pk, restricted=False, actor=world["officer"])


def test_the_sync_stores_nothing_new_for_a_restricted_person(world):
    org = world["org"]
    with tenant_context(org):
        directory_user_upsert_from_graph(organization=org, users=[
            _graph_user(world["ana_id"], "Ana Gracia", jobTitle="Head buyer",
                        signInActivity={"lastSignInDateTime": "2026-12-01T10:00:00Z"}),
            _graph_user(world["ben_id"], "Ben Okafor", jobTitle="Head of sales"),
        ])
        ana = DirectoryUser.objects.for_org(org).get(pk=world["ana"].pk)
        ben = DirectoryUser.objects.for_org(org).get(pk=world["ben"].pk)
        conflicts = set(FieldLockConflict.objects.for_org(org).values_list("field_name", flat=True))
    # Ana's unlocked title did not follow Graph either: the whole row is frozen; staff see every refusal.
    assert (ana.display_name, ana.job_title, ana.last_sign_in_at) == ("Ana García", "Buyer", None)
    assert conflicts == {"display_name", "job_title"}
    assert ben.job_title == "Head of sales"
    _lift(world)
    with tenant_context(org):
        directory_user_upsert_from_graph(organization=org, users=[
            _graph_user(world["ana_id"], "Ana Gracia", jobTitle="Head buyer (again)")])
        ana = DirectoryUser.objects.for_org(org).get(pk=world["ana"].pk)
    # Lifted: the title follows Graph again; the corrected name stays locked (the correction stands).
    assert (ana.display_name, ana.job_title) == ("Ana García", "Head buyer (again)")


def test_nothing_sends_a_restricted_persons_data_to_microsoft(world):
    org, ana, ben, pool = world["org"], world["ana"], world["ben"], world["pool"]
    with tenant_context(org):
        with pytest.raises(assignments.AssignmentRefused) as refused:
            assignments.license_assign(organization=org, user=ana, sku=pool, actor=SYSTEM)
        assert refused.value.code == "restricted" and "Art. 18" in refused.value.message
        held = assignments.license_assign(organization=org, user=ben, sku=pool, actor=SYSTEM)
        LicenseAssignment.objects.for_org(org).filter(pk=held.pk).update(state=LicenseAssignment.State.ASSIGNED)
        with pytest.raises(assignments.AssignmentRefused):
            license_reassign(organization=org, assignment=held, to_user=ana, actor=SYSTEM)
        with pytest.raises(DirectoryActionRefused) as refused_reset:
            directory_user_password_reset(organization=org, user=ana, actor=SYSTEM)
        assert refused_reset.value.code == "restricted"
        job = bulk.bulk_preview_selection(organization=org, sku=pool, action=BulkJob.Action.ASSIGN,
                                          users=[ana, ben], actor=SYSTEM)
        rows = {r.user_id: (r.outcome, r.error_code) for r in job.rows.all()}
        assert not LicenseAssignment.objects.for_org(org).filter(user=ana).exists()
    assert rows[ana.pk] == ("invalid", "restricted")


def test_a_call_queued_before_the_restriction_fails_instead_of_running(world):
    org, ben, pool = world["org"], world["ben"], world["pool"]
    with tenant_context(org):
        pending = assignments.license_assign(organization=org, user=ben, sku=pool, actor=SYSTEM)
    correction_apply(organization=org, model_label="licensing.directoryuser", object_id=ben.pk,
                     field_name="job_title", new_value="Sales", reason="Disputed", actor=world["officer"],
                     restrict=True)
    with tenant_context(org), transaction.atomic():
        # Only Ben's row is in the batch, so no Graph call is made at all (none could reach the emulator here).
        summary = assignments.license_changes_apply(pending.operation)
        pending.refresh_from_db()
    assert summary == {"assigned": 0, "removed": 0, "failed": 1}
    assert (pending.state, pending.error_code) == (LicenseAssignment.State.FAILED, "restricted")
    assert not Disclosure.objects.filter(organization=org).exists()


def test_disclosures_naming_a_restricted_person_are_refused_unless_the_law_allows(world):
    org, ana, ben = world["org"], world["ana"], world["ben"]

    def disclose(purpose, who):
        return disclosure_record(recipient=Disclosure.Recipient.DISTRIBUTOR, organization=org,
                                 categories=["identity"], purpose=purpose, operation="distributor.feed",
                                 ms_request_id=str(uuid.uuid4()), subject_model=DirectoryUser,
                                 subject_ids=[p.pk for p in who])

    for purpose in (Disclosure.Purpose.LICENSE_MANAGEMENT, Disclosure.Purpose.MARKETING):
        with pytest.raises(DisclosureRefused, match="restricted"):
            disclose(purpose, [ben, ana])
    # Art. 18(2): a legal obligation (a regulator's order) still goes out; others' data is unaffected.
    assert disclose(Disclosure.Purpose.LEGAL_OBLIGATION, [ana]).pk
    assert disclose(Disclosure.Purpose.LICENSE_MANAGEMENT, [ben]).pk
    _lift(world)
    assert disclose(Disclosure.Purpose.LICENSE_MANAGEMENT, [ana]).pk


def test_the_inactive_users_report_leaves_a_restricted_person_out(world):
    org, ana, ben, pool = world["org"], world["ana"], world["ben"], world["pool"]
    long_ago = timezone.now() - timedelta(days=400)
    with tenant_context(org):
        DirectoryUser.objects.for_org(org).update(created_at=long_ago)
        for person in (ana, ben):
            LicenseAssignment.objects.create(organization=org, user=person, sku=pool,
                                             state=LicenseAssignment.State.ASSIGNED)
        assert [a.user_id for a in inactive_assignments(org, days=30)] == [ben.pk]
    _lift(world)
    with tenant_context(org):
        assert {a.user_id for a in inactive_assignments(org, days=30)} == {ana.pk, ben.pk}
