"""Erasure: the registry decides what goes and what stays; keys are shredded so old dumps are unreadable;
a grace period lets the requester cancel; recipients are listed for notice; a second run does nothing."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from accounts.models import RecoveryCodeDevice, SignInEvent, TOTPDevice, User
from accounts.tests.factories import MembershipFactory, TOTPDeviceFactory
from accounts.tests.helpers import verified_client
from core.audit import Actor, audit_record
from core.crypto import DecryptionError
from core.disclosures import disclosure_record
from core.fields import Ciphertext
from core.models import AuditEvent, Disclosure
from privacy.models import Erasure, LegalHold, OptOut, PrivacyRequest, RecipientNotice
from privacy.services import request_decisions as decisions
from privacy.services.erasure import erasure_perform, erasure_plan
from privacy.services.requests import (
    PrivacyRequestError,
    request_submit_portal,
    request_submit_public,
    request_verify_by_officer,
)
from privacy.tasks import run_due_erasures

from .factories import make_officer

pytestmark = pytest.mark.django_db
T0 = datetime.datetime(2026, 5, 4, 9, 0, tzinfo=datetime.UTC)
AFTER_GRACE = T0 + datetime.timedelta(days=7, minutes=1)


def _subject():
    membership = MembershipFactory()
    user = membership.user
    TOTPDeviceFactory(user=user)
    SignInEvent.objects.create(user=user, occurred_at=T0 - datetime.timedelta(days=3), succeeded=True,
                               factor="totp", ip_address="198.51.100.4")
    OptOut.objects.create(user=user, method="form")
    audit_record(actor=Actor.user(user), action="license.assigned", organization=membership.organization)
    disclosure_record(recipient=Disclosure.Recipient.MICROSOFT, organization=membership.organization,
                      categories=["identity", "contact"], purpose=Disclosure.Purpose.PROVISIONING,
                      operation="customer.create", ms_request_id="ms-1")
    return membership


def _raw_user_columns(user_id) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT email, full_name FROM accounts_user WHERE id = %s", [user_id.hex if connection.vendor
                       == "sqlite" else user_id])
        return cursor.fetchone()


def _approved_deletion(capture, user):
    with time_machine.travel(T0, tick=False):
        with capture(execute=True):
            req = request_submit_portal(user=user, kind="deletion", region="eu_uk", recent_mfa=True)
        with capture(execute=True):
            decisions.request_approve(request_id=req.pk, actor=make_officer())
    return PrivacyRequest.objects.get(pk=req.pk)


def test_plan_erases_account_data_and_keeps_what_retention_holds():
    user = _subject().user
    plan = {item.get("model", "accounts.user"): item for item in erasure_plan(user)}
    assert plan["accounts.user"]["action"] == "erase"
    assert plan["accounts.totpdevice"]["action"] == "erase"
    assert plan["accounts.membership"]["action"] == "erase"
    assert plan["accounts.signinevent"]["action"] == "keep" and "security" in plan["accounts.signinevent"]["why"]
    assert plan["privacy.optout"]["action"] == "keep" and "7101" in plan["privacy.optout"]["why"]
    assert plan["core.auditevent"]["action"] == "keep" and "tax" in plan["core.auditevent"]["why"]


def test_erasure_after_grace_shreds_keys_keeps_held_data_and_runs_once(django_capture_on_commit_callbacks):
    membership = _subject()
    user, email, name = membership.user, membership.user.email, membership.user.full_name
    dump = _raw_user_columns(user.pk)  # what an old database dump holds
    req = _approved_deletion(django_capture_on_commit_callbacks, user)
    erasure = req.erasure
    assert erasure.status == Erasure.Status.SCHEDULED
    assert "cancel the deletion" in mail.outbox[-1].body
    with time_machine.travel(T0 + datetime.timedelta(days=6), tick=False):
        assert run_due_erasures() == 0
        with pytest.raises(PrivacyRequestError):
            erasure_perform(erasure_id=erasure.pk, actor=None)
    with time_machine.travel(AFTER_GRACE, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert run_due_erasures() == 1

    erased = User.objects.get(pk=user.pk)
    assert not erased.is_active and not erased.has_usable_password()
    assert erased.email.endswith("@erased.invalid") and erased.full_name == "Erased user"
    assert User.objects.get_by_email(email) is None
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not RecoveryCodeDevice.objects.filter(user=user).exists()
    assert not membership.__class__.objects.filter(user=user).exists()
    # Kept: the security log, the opt-out record and the audit chain.
    assert SignInEvent.objects.filter(user=user).count() == 1
    assert OptOut.objects.filter(user=user).exists()
    assert AuditEvent.unscoped_objects.filter(actor_id=str(user.pk)).exists()
    # Restoring the old dump: the ciphertexts are there, the key is not.
    stale = User(pk=user.pk)
    stale.email = Ciphertext(dump[0])
    with pytest.raises(DecryptionError):
        _ = stale.email
    assert email not in "".join(_raw_user_columns(user.pk)) and name not in "".join(_raw_user_columns(user.pk))
    # Recipients named in the disclosure log are listed for the Art. 19 notice.
    notice = RecipientNotice.objects.get(request=req)
    assert notice.recipient == "microsoft" and notice.categories == ["contact", "identity"]
    # The requester is told what was erased and what was kept, and why.
    body = mail.outbox[-1].body
    assert "Kept, and why" in body and "Sign in events" in body and "Microsoft" in body
    req.refresh_from_db()
    assert req.status == PrivacyRequest.Status.COMPLETED
    # A second run is a no-op.
    outcome = Erasure.objects.get(pk=erasure.pk).outcome
    with time_machine.travel(AFTER_GRACE + datetime.timedelta(hours=1), tick=False):
        assert run_due_erasures() == 0
        assert erasure_perform(erasure_id=erasure.pk, actor=None).outcome == outcome
    assert User.objects.get(pk=user.pk).email == erased.email


def test_requester_cancels_during_the_grace_period(django_capture_on_commit_callbacks):
    membership = _subject()
    user = membership.user
    req = _approved_deletion(django_capture_on_commit_callbacks, user)
    with time_machine.travel(T0 + datetime.timedelta(days=1)):
        client = verified_client(Client(), user)
        assert "Cancel the deletion" in client.get(f"/privacy/mine/{req.reference}/").content.decode()
        client.post(f"/privacy/mine/{req.reference}/cancel-deletion/")
    assert Erasure.objects.get(request=req).status == Erasure.Status.CANCELLED
    with time_machine.travel(AFTER_GRACE, tick=False):
        assert run_due_erasures() == 0
    assert User.objects.get(pk=user.pk).is_active and TOTPDevice.objects.filter(user=user).exists()


def test_deletion_without_an_account_is_refused_at_approval():
    officer = make_officer()
    req = request_submit_public(email="nobody@example.org", name="", kind="deletion", region="eu_uk")
    request_verify_by_officer(request_id=req.pk, actor=officer, method_note="Phone call")
    with pytest.raises(PrivacyRequestError) as refused:
        decisions.request_approve(request_id=req.pk, actor=officer)
    assert refused.value.code == "no_account"


def test_a_legal_hold_makes_the_erasure_wait(django_capture_on_commit_callbacks):
    membership = _subject()
    req = _approved_deletion(django_capture_on_commit_callbacks, membership.user)
    hold = LegalHold.objects.create(organization=membership.organization, reason="Litigation")
    with time_machine.travel(AFTER_GRACE, tick=False):
        assert run_due_erasures() == 0
        with pytest.raises(PrivacyRequestError) as held:
            erasure_perform(erasure_id=req.erasure.pk, actor=None)
    assert held.value.code == "legal_hold" and User.objects.get(pk=membership.user.pk).is_active
    LegalHold.objects.filter(pk=hold.pk).update(released_at=AFTER_GRACE)
    with time_machine.travel(AFTER_GRACE, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert run_due_erasures() == 1
    assert not User.objects.get(pk=membership.user.pk).is_active


def _agent_deletion(officer, *, agent_email: str, subject_email: str) -> PrivacyRequest:
    req = request_submit_public(email=agent_email, name="Bruno Agent", kind="deletion", region="eu_uk",
                                on_behalf=True, agent_name="Ana Lima", subject_email=subject_email)
    request_verify_by_officer(request_id=req.pk, actor=officer, method_note="Agent's code and ID checked")
    letter = SimpleUploadedFile("letter.pdf", b"%PDF-1.7 signed letter", content_type="application/pdf")
    decisions.request_authorization_record(request_id=req.pk, actor=officer, note="Signed letter checked",
                                           document=letter)
    return req


def test_an_agents_deletion_erases_the_person_they_act_for_never_the_agent(django_capture_on_commit_callbacks):
    officer = make_officer()
    person = _subject().user
    agent = MembershipFactory(user__email="bruno@agents.example").user
    with time_machine.travel(T0, tick=False):
        req = _agent_deletion(officer, agent_email=agent.email, subject_email=person.email.upper())
        with django_capture_on_commit_callbacks(execute=True):
            decisions.request_approve(request_id=req.pk, actor=officer)
    erasure = Erasure.objects.get(request=req)
    assert erasure.subject_id == str(person.pk)
    with time_machine.travel(AFTER_GRACE, tick=False), django_capture_on_commit_callbacks(execute=True):
        run_due_erasures()
    assert not User.objects.get(pk=person.pk).is_active
    assert User.objects.get(pk=agent.pk).is_active  # the agent's own account is untouched


def test_an_agents_request_whose_person_has_no_account_is_refused_not_turned_on_the_agent():
    officer = make_officer()
    agent = MembershipFactory(user__email="bruno@agents.example").user
    req = _agent_deletion(officer, agent_email=agent.email, subject_email="nobody@example.org")
    with pytest.raises(PrivacyRequestError) as refused:
        decisions.request_approve(request_id=req.pk, actor=officer)
    assert refused.value.code == "no_account"
    assert not Erasure.objects.filter(request=req).exists()


def test_an_agents_request_recorded_without_the_persons_address_finds_nobody():
    officer = make_officer()
    agent = MembershipFactory(user__email="bruno@agents.example").user
    req = _agent_deletion(officer, agent_email=agent.email, subject_email="ana@example.org")
    PrivacyRequest.objects.filter(pk=req.pk).update(subject_email=None)  # filed before the address was asked
    with pytest.raises(PrivacyRequestError) as refused:
        decisions.request_approve(request_id=req.pk, actor=officer)
    assert refused.value.code == "no_account"


def test_an_agents_access_report_covers_the_person_they_act_for():
    from privacy.selectors import subject_account

    officer = make_officer()
    person = _subject().user
    agent = MembershipFactory(user__email="bruno@agents.example").user
    req = request_submit_public(email=agent.email, name="Bruno Agent", kind="access", region="eu_uk",
                                on_behalf=True, agent_name="Ana Lima", subject_email=person.email)
    request_verify_by_officer(request_id=req.pk, actor=officer, method_note="Agent's code checked")
    assert subject_account(PrivacyRequest.objects.get(pk=req.pk)) == person
