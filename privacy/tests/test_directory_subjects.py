"""Directory users as data subjects: a person in a customer's Entra directory, known to us only from the
directory sync, gets an access report of what we hold about them and an erasure that unassigns their
licenses in Microsoft 365 through the outbox before erasing, respecting legal holds."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.core import mail
from django.utils import timezone

from accounts.tests.factories import OrganizationFactory
from core.audit import Actor, audit_record
from core.disclosures import disclosure_record
from core.models import Disclosure, FieldLockConflict
from core.tenancy import tenant_context
from licensing.models import DirectoryUser, LicenseAssignment, TenantSku
from licensing.models.directory import graph_id_index_of
from licensing.services.directory.upsert import directory_user_upsert_from_graph
from licensing.tests import directory_helpers
from licensing.tests.directory_helpers import premium, run_sync
from privacy.models import Erasure, LegalHold, PrivacyRequest, RecipientNotice
from privacy.services import exports
from privacy.services import request_decisions as decisions
from privacy.services.erasure import erasure_perform
from privacy.services.requests import PrivacyRequestError, request_submit_public, request_verify_by_officer
from privacy.tasks import run_due_erasures

from .factories import make_officer

graph = directory_helpers.graph
linked_org = directory_helpers.linked_org


def _graph_user(graph_id, upn, name, **overrides):
    return {"id": str(graph_id), "displayName": name, "userPrincipalName": upn, "mail": upn, "jobTitle": "Buyer",
            "usageLocation": "US", "accountEnabled": True,
            "signInActivity": {"lastSignInDateTime": "2022-03-01T08:30:00Z"}, **overrides}


def _public_request(kind, email, organization=None):
    officer = make_officer()
    req = request_submit_public(email=email, name="", kind=kind, region="eu_uk")
    request_verify_by_officer(request_id=req.pk, actor=officer, method_note="Code by phone")
    if organization is not None:
        PrivacyRequest.objects.filter(pk=req.pk).update(organization=organization)
    return PrivacyRequest.objects.get(pk=req.pk), officer


def _rows(sections) -> dict[str, list[dict]]:
    return {s.key: [row for batch in s.iter_rows() for row in batch] for s in sections}


@pytest.mark.django_db
def test_access_report_of_a_directory_user_holds_their_data_and_nobody_elses():
    org, other_org = OrganizationFactory(), OrganizationFactory()
    ana_id, ben_id, twin_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with tenant_context(org):
        directory_user_upsert_from_graph(organization=org, users=[
            _graph_user(ana_id, "ana@contoso.example", "Ana Gracia"),
            _graph_user(ben_id, "ben@contoso.example", "Ben Okafor")])
        ana = DirectoryUser.objects.for_org(org).get(graph_id_index=graph_id_index_of(ana_id))
        ben = DirectoryUser.objects.for_org(org).get(graph_id_index=graph_id_index_of(ben_id))
        pool = TenantSku.objects.create(organization=org, sku_id=uuid.uuid4(), display_name="E5", purchased=5)
        for person in (ana, ben):
            LicenseAssignment.objects.create(organization=org, user=person, sku=pool,
                                             state=LicenseAssignment.State.ASSIGNED)
    with tenant_context(other_org):
        directory_user_upsert_from_graph(organization=other_org, users=[
            _graph_user(twin_id, "someone@fabrikam.example", "Someone Else")])
    audit_record(actor=Actor.system("tests"), action="directory.password_reset", organization=org, target=ana)
    audit_record(actor=Actor.system("tests"), action="directory.password_reset", organization=org, target=ben)
    disclosure_record(recipient=Disclosure.Recipient.MICROSOFT, organization=org, categories=["identity"],
                      purpose=Disclosure.Purpose.LICENSE_MANAGEMENT, operation="users.assign_license_batch",
                      ms_request_id="r-ours")
    disclosure_record(recipient=Disclosure.Recipient.MICROSOFT, organization=other_org, categories=["identity"],
                      purpose=Disclosure.Purpose.LICENSE_MANAGEMENT, operation="users.assign_license_batch",
                      ms_request_id="r-theirs")

    req, _ = _public_request("access", "ANA@contoso.example")  # no portal account: a directory user
    rows = _rows(exports._sections(req))

    [entry] = rows["directory-licensing.directoryuser"]
    assert entry["id"] == str(ana.pk) and entry["display_name"] == "Ana Gracia"
    assert entry["last_sign_in_at"].startswith("2022-03-01")  # sign-in activity Graph reported
    assert entry["upn_index"] == "Held, not shown (identity)"  # a keyed hash is described, not shown
    # The Entra object id is stored encrypted and shown decrypted; its keyed index is described.
    assert entry["graph_id"] == str(ana_id) and entry["graph_id_index"] == "Held, not shown (identity)"
    assert [a["user"] for a in rows["directory-licensing.licenseassignment"]] == [str(ana.pk)]
    assert [e["action"] for e in rows["directory-audit"]] == ["directory.password_reset"]
    assert [d["operation"] for d in rows["directory-disclosures"]] == ["users.assign_license_batch"]
    assert len(rows["directory-disclosures"]) == 1  # the other customer's disclosures are not theirs
    assert rows["directory-retention"]
    flat = repr(rows)
    assert "Ben Okafor" not in flat and "Someone Else" not in flat and str(ben.pk) not in flat


@pytest.mark.emulator
@pytest.mark.django_db(transaction=True)
def test_erasing_a_directory_user_unassigns_through_the_outbox_then_erases(linked_org, emulator):
    run_sync(linked_org)
    pool = premium(linked_org)
    with tenant_context(linked_org):
        held = LicenseAssignment.objects.for_org(linked_org).filter(
            sku=pool, state=LicenseAssignment.State.ASSIGNED).select_related("user").first()
        person = held.user
        upn, name = person.user_principal_name, person.display_name
    disclosure_record(recipient=Disclosure.Recipient.MICROSOFT, organization=linked_org, categories=["identity"],
                      purpose=Disclosure.Purpose.LICENSE_MANAGEMENT, operation="users.assign_license_batch",
                      ms_request_id="r-1")
    audit_record(actor=Actor.system("tests"), action="directory.sign_in_blocked", organization=linked_org,
                 target=person)
    req, officer = _public_request("deletion", upn, organization=linked_org)
    decisions.request_approve(request_id=req.pk, actor=officer)
    erasure = Erasure.objects.get(request=req)
    assert erasure.subject_id == "" and erasure.directory_users == [
        {"org": str(linked_org.pk), "id": str(person.pk)}]

    # A legal hold on the organisation makes it wait, even after the grace period.
    Erasure.objects.filter(pk=erasure.pk).update(erase_after=timezone.now() - datetime.timedelta(minutes=1))
    hold = LegalHold.objects.create(organization=linked_org, reason="Litigation")
    assert run_due_erasures() == 0
    with pytest.raises(PrivacyRequestError, match="legal hold"):
        erasure_perform(erasure_id=erasure.pk, actor=Actor.system("tests"))
    LegalHold.objects.filter(pk=hold.pk).update(released_at=timezone.now())

    # First run: licenses unassigned through the outbox (eager Celery: the worker calls Graph on commit).
    emulator.clear_requests_log()
    run_due_erasures()
    assert len(emulator.requests_log(path="/graph/v1.0/$batch")) >= 1
    with tenant_context(linked_org):
        assert set(LicenseAssignment.objects.for_org(linked_org).filter(user=person)
                   .values_list("state", flat=True)) == {LicenseAssignment.State.REMOVED}
    assert Erasure.objects.get(pk=erasure.pk).status == Erasure.Status.UNASSIGNING

    # Next run: Microsoft has confirmed, so the data is erased and the request completed.
    run_due_erasures()
    erasure.refresh_from_db()
    assert erasure.status == Erasure.Status.DONE
    with tenant_context(linked_org):
        row = DirectoryUser.objects.for_org(linked_org).get(pk=person.pk)
        assert not LicenseAssignment.objects.for_org(linked_org).filter(user=person).exists()
    assert row.display_name == "Erased user" and row.mail is None and row.job_title is None
    assert row.user_principal_name.endswith("@erased.invalid") and row.removed_at is not None
    assert RecipientNotice.objects.filter(request=req, recipient="microsoft").exists()
    body = mail.outbox[-1].body
    assert "License assignments" in body and "unassigned in Microsoft 365" in body
    assert "Kept, and why" in body and "Activity log entries about you" in body

    # The person is still in the customer's directory: the next sync neither refills nor reports them.
    run_sync(linked_org)
    with tenant_context(linked_org):
        again = DirectoryUser.objects.for_org(linked_org).get(pk=person.pk)
        assert (again.display_name, again.removed_at is not None) == ("Erased user", True)
        assert not FieldLockConflict.objects.for_org(linked_org).exists()
        assert DirectoryUser.objects.for_org(linked_org).filter(graph_id_index=person.graph_id_index).count() == 1
    assert name != again.display_name
    # A second run changes nothing.
    assert run_due_erasures() == 0
