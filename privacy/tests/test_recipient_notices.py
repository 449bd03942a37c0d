"""GDPR Art. 19 notices go out by themselves: every recipient in the disclosure log is emailed on
correction, restriction and erasure, once per action, without personal data; a recipient with no
contact stays pending for the officer."""

from __future__ import annotations

import uuid

import pytest
from django.core import mail

from accounts.tests.factories import MembershipFactory
from core.disclosures import disclosure_record
from core.models import Disclosure, FieldLock
from core.tenancy import tenant_context
from licensing.models import DirectoryUser
from licensing.models.directory import graph_id_index_of
from licensing.services.directory.upsert import directory_user_upsert_from_graph
from privacy.models import RecipientNotice
from privacy.services import request_decisions as decisions
from privacy.services.corrections import correction_apply, restriction_set
from privacy.services.requests import request_submit_portal
from privacy.tasks import send_recipient_notices

from .factories import make_officer

pytestmark = pytest.mark.django_db


def _notices_to(address):
    return [m for m in mail.outbox if address in m.to]


def test_a_correction_then_a_restriction_are_sent_to_each_recipient(settings, django_capture_on_commit_callbacks):
    settings.PRIVACY_RECIPIENT_CONTACTS = {"microsoft": "notices@microsoft.example"}
    membership, graph_id = MembershipFactory(), uuid.uuid4()
    org = membership.organization
    with tenant_context(org):
        directory_user_upsert_from_graph(organization=org, users=[{
            "id": str(graph_id), "displayName": "Ana Gracia", "userPrincipalName": "ana@contoso.example",
            "jobTitle": "Buyer", "accountEnabled": True}])
        person = DirectoryUser.objects.for_org(org).get(graph_id_index=graph_id_index_of(graph_id))
    for recipient, request_id in ((Disclosure.Recipient.MICROSOFT, "r-1"), (Disclosure.Recipient.REGULATOR, "r-2")):
        disclosure_record(recipient=recipient, organization=org, categories=["identity"],
                          purpose=Disclosure.Purpose.LEGAL_OBLIGATION, operation="users.update",
                          ms_request_id=request_id)
    officer = make_officer()
    req = request_submit_portal(user=membership.user, kind="correction", region="eu_uk", organization=org,
                                details="My title is wrong", recent_mfa=True)
    decisions.request_approve(request_id=req.pk, actor=officer)

    with django_capture_on_commit_callbacks(execute=True):
        correction_apply(organization=org, model_label="licensing.directoryuser", object_id=person.pk,
                         field_name="job_title", new_value="Head buyer", reason="Asked", actor=officer, request=req)
    [first] = _notices_to("notices@microsoft.example")
    assert req.reference in first.subject and "correction" in first.body
    assert "Ana" not in first.body and "ana@contoso.example" not in first.body and "Head buyer" not in first.body
    sent = RecipientNotice.objects.get(request=req, recipient="microsoft")
    assert (sent.status, sent.sent_to, sent.sends, sent.actions) == ("sent", "notices@microsoft.example", 1,
                                                                     ["correction"])
    # No contact for the regulator: pending for the officer, who sends it by the agreed channel.
    assert RecipientNotice.objects.get(request=req, recipient="regulator").status == "pending"

    # Restricting later is news to the recipient: the notice re-opens and goes again, once.
    with tenant_context(org):
        lock = FieldLock.objects.for_org(org).get()
    with django_capture_on_commit_callbacks(execute=True):
        restriction_set(organization=org, lock_id=lock.pk, restricted=True, actor=officer, request=req)
    assert len(_notices_to("notices@microsoft.example")) == 2
    assert "restrict processing" in _notices_to("notices@microsoft.example")[-1].body
    assert RecipientNotice.objects.get(request=req, recipient="microsoft").sends == 2
    # The hourly sweep finds nothing more to send.
    assert send_recipient_notices() == 0
    assert len(_notices_to("notices@microsoft.example")) == 2
