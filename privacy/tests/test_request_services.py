"""Privacy request services: intake, verification, and the officer's decisions, with time frozen."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from accounts.tests.factories import MembershipFactory, OrganizationFactory
from core.models import AuditEvent
from privacy.models import OptOut, PrivacyRequest, PrivacyRequestEvent
from privacy.selectors import request_queue_figures
from privacy.services import request_decisions as decisions
from privacy.services.requests import (
    PrivacyRequestError,
    request_code_send,
    request_submit_portal,
    request_submit_public,
    request_submit_staff,
    request_verify_by_officer,
    request_verify_code,
)

from .factories import last_code, make_officer

pytestmark = pytest.mark.django_db
Status = PrivacyRequest.Status
T0 = datetime.datetime(2026, 1, 31, 10, 0, tzinfo=datetime.UTC)  # a Saturday


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    def run(fn, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(**kwargs)

    return run


def _public(commit, **overrides):
    fields = {"email": "ana@example.org", "name": "Ana Lima", "kind": "access", "region": "us_ca", "details": ""}
    return commit(request_submit_public, **{**fields, **overrides})


@time_machine.travel(T0, tick=False)
def test_portal_request_is_verified_acknowledged_and_dated_by_region(commit):
    membership = MembershipFactory(organization__time_zone="UTC")
    req = commit(request_submit_portal, user=membership.user, kind="access", region="eu_uk",
                 organization=membership.organization, recent_mfa=True)
    assert req.status == Status.OPEN and req.verification == "mfa_session"
    assert req.regimes == ["gdpr"] and req.response_due == datetime.date(2026, 3, 2) and req.ack_due is None
    assert req.due_date == datetime.date(2026, 3, 2) and req.extended_due == datetime.date(2026, 4, 30)
    assert [m.subject for m in mail.outbox] == [f"We received your privacy request {req.reference}"]
    assert "respond by 2 March 2026" in mail.outbox[0].body and mail.outbox[0].to == [membership.user.email]
    actions = list(req.events.values_list("action", flat=True))
    assert actions == ["received", "verified", "acknowledged", "emailed"]
    assert AuditEvent.unscoped_objects.filter(action="privacy.request_received", target_id=str(req.pk)).exists()


@time_machine.travel(T0, tick=False)
def test_unknown_residence_takes_the_earliest_dates_of_both_laws(commit):
    user = MembershipFactory().user
    req = commit(request_submit_portal, user=user, kind="deletion", region="other", recent_mfa=True)
    assert sorted(req.regimes) == ["ccpa", "gdpr"]
    assert req.response_due == datetime.date(2026, 3, 2)
    assert req.ack_due == datetime.date(2026, 2, 13)  # 10 US business days (16 Feb is a holiday, after)


def test_portal_request_needs_recent_mfa_and_membership(commit):
    user = MembershipFactory().user
    with pytest.raises(PrivacyRequestError) as stale:
        commit(request_submit_portal, user=user, kind="access", region="eu_uk", recent_mfa=False)
    assert stale.value.code == "reauthentication_required"
    with pytest.raises(PrivacyRequestError) as foreign:
        commit(request_submit_portal, user=user, kind="access", region="eu_uk", organization=OrganizationFactory(),
               recent_mfa=True)
    assert foreign.value.code == "not_a_member"
    assert not PrivacyRequest.objects.exists()


def test_portal_opt_out_request_is_honoured_at_once(commit):
    membership = MembershipFactory()
    req = commit(request_submit_portal, user=membership.user, kind="opt_out", region="us_ca", recent_mfa=True)
    assert req.status == Status.COMPLETED
    assert OptOut.objects.get(user=membership.user).method == "request"
    assert OptOut.objects.filter(organization=membership.organization).exists()


def test_public_request_waits_for_the_emailed_code(commit):
    with time_machine.travel(T0, tick=False):
        req = _public(commit)
    assert req.status == Status.UNVERIFIED and req.verified_at is None
    code = last_code("ana@example.org")
    assert req.code_hash and code not in req.code_hash
    with pytest.raises(PrivacyRequestError) as wrong:
        request_verify_code(request_id=req.pk, code="000000" if code != "000000" else "111111")
    assert wrong.value.code == "wrong_code" and "3 tries left" in wrong.value.message
    with time_machine.travel(T0 + datetime.timedelta(minutes=9, seconds=59), tick=False):
        verified = commit(request_verify_code, request_id=req.pk, code=code)
    assert verified.status == Status.OPEN and verified.verification == "email_code" and verified.code_hash == ""
    # The clock started at receipt, not at verification (CCPA §7021(b)).
    assert verified.response_due == datetime.date(2026, 3, 16)
    assert mail.outbox[-1].subject == f"We received your privacy request {req.reference}"


def test_expired_code_fails_and_the_fourth_wrong_code_locks(commit):
    with time_machine.travel(T0, tick=False):
        req = _public(commit)
    code = last_code("ana@example.org")
    with time_machine.travel(T0 + datetime.timedelta(minutes=10, seconds=1), tick=False), \
            pytest.raises(PrivacyRequestError):
        request_verify_code(request_id=req.pk, code=code)
    for _ in range(2):
        with pytest.raises(PrivacyRequestError):
            request_verify_code(request_id=req.pk, code="12345x")
    with pytest.raises(PrivacyRequestError) as fourth:
        request_verify_code(request_id=req.pk, code="999999" if code != "999999" else "888888")
    assert fourth.value.code == "locked"
    req.refresh_from_db()
    assert req.verification_locked and req.status == Status.UNVERIFIED
    # Even the right code (a fresh one cannot be sent) no longer works.
    with pytest.raises(PrivacyRequestError):
        request_code_send(request_id=req.pk)
    with pytest.raises(PrivacyRequestError):
        request_verify_code(request_id=req.pk, code=code)


def test_an_unverified_request_cannot_be_approved(commit):
    req = _public(commit)
    officer = make_officer()
    with pytest.raises(PrivacyRequestError) as refused:
        decisions.request_approve(request_id=req.pk, actor=officer)
    assert refused.value.code == "unverified"
    commit(request_verify_by_officer, request_id=req.pk, actor=officer, method_note="Called the number on file")
    assert commit(decisions.request_approve, request_id=req.pk, actor=officer).status == Status.APPROVED


def test_on_behalf_needs_the_authorisation_on_file(commit):
    officer = make_officer()
    req = _public(commit, on_behalf=True, agent_name="Bruno Agent", subject_email="bruno@example.org")
    commit(request_verify_code, request_id=req.pk, code=last_code("ana@example.org"))
    with pytest.raises(PrivacyRequestError) as refused:
        decisions.request_approve(request_id=req.pk, actor=officer)
    assert refused.value.code == "authorization_missing"
    letter = SimpleUploadedFile("letter.pdf", b"%PDF-1.7 signed letter", content_type="application/pdf")
    commit(decisions.request_authorization_record, request_id=req.pk, actor=officer, note="Signed letter, 2 pages",
           document=letter)
    assert commit(decisions.request_approve, request_id=req.pk, actor=officer).status == Status.APPROVED
    with pytest.raises(ValidationError):
        _public(commit, on_behalf=True, agent_name="")


def test_deny_needs_a_reason_and_tells_the_requester(commit):
    officer = make_officer()
    req = _public(commit)
    with pytest.raises(ValidationError):
        decisions.request_deny(request_id=req.pk, actor=officer, reason="  ")
    commit(decisions.request_deny, request_id=req.pk, actor=officer, reason="We hold no data about this address.")
    req.refresh_from_db()
    assert req.status == Status.DENIED and req.decision_reason == "We hold no data about this address."
    assert "We hold no data about this address." in mail.outbox[-1].body
    assert "complain" in mail.outbox[-1].body
    with pytest.raises(PrivacyRequestError):
        decisions.request_approve(request_id=req.pk, actor=officer)


def test_ccpa_extension_once_within_45_days_with_a_notice(commit):
    officer = make_officer()
    with time_machine.travel(T0, tick=False):
        req = _public(commit)
    with time_machine.travel(datetime.datetime(2026, 3, 16, 23, tzinfo=datetime.UTC), tick=False):  # day 45
        extended = commit(decisions.request_extend, request_id=req.pk, actor=officer,
                          reason="Records span three archived systems.")
        assert extended.due_date == datetime.date(2026, 4, 30)
        notice = mail.outbox[-1]
        assert "30 April 2026" in notice.body and "16 March 2026" in notice.body
        assert "Records span three archived systems." in notice.body
        with pytest.raises(PrivacyRequestError) as twice:
            decisions.request_extend(request_id=req.pk, actor=officer, reason="Again")
    assert twice.value.code == "extension_refused"


def test_gdpr_extension_refused_after_the_first_month(commit):
    officer = make_officer()
    with time_machine.travel(T0, tick=False):
        req = _public(commit, region="eu_uk")
    with time_machine.travel(datetime.datetime(2026, 3, 3, 9, tzinfo=datetime.UTC), tick=False), \
            pytest.raises(PrivacyRequestError) as late:
        decisions.request_extend(request_id=req.pk, actor=officer, reason="Complex")
    assert "too late" in late.value.message
    assert PrivacyRequest.objects.get(pk=req.pk).due_date == datetime.date(2026, 3, 2)


def test_complete_only_after_approval(commit):
    officer = make_officer()
    user = MembershipFactory().user
    req = commit(request_submit_portal, user=user, kind="correction", region="eu_uk", details="Name is Ana",
                 recent_mfa=True)
    with pytest.raises(PrivacyRequestError):
        decisions.request_complete(request_id=req.pk, actor=officer, note="Done")
    commit(decisions.request_assign, request_id=req.pk, officer=officer, actor=officer)
    commit(decisions.request_approve, request_id=req.pk, actor=officer)
    done = commit(decisions.request_complete, request_id=req.pk, actor=officer, note="Your name now reads Ana.")
    assert done.status == Status.COMPLETED and done.assigned_to == officer
    assert "Your name now reads Ana." in mail.outbox[-1].body
    assert list(done.events.exclude(action="emailed").values_list("action", flat=True)) == [
        "received", "verified", "acknowledged", "assigned", "approved", "completed",
    ]


def test_only_officers_can_be_assigned(commit):
    req = _public(commit)
    with pytest.raises(ValidationError):
        decisions.request_assign(request_id=req.pk, officer=MembershipFactory().user, actor=make_officer())


def test_staff_entry_is_dated_when_received_and_acknowledged(commit):
    officer = make_officer()
    with time_machine.travel(datetime.datetime(2026, 12, 21, 9, tzinfo=datetime.UTC), tick=False):
        req = commit(request_submit_staff, actor=officer, email="letter@example.net", name="Post Writer",
                     kind="deletion", region="us_ca", details="By post",
                     received_at=datetime.datetime(2026, 12, 18, 12, tzinfo=datetime.UTC))
    assert req.channel == "staff" and req.status == Status.UNVERIFIED
    assert req.ack_due == datetime.date(2027, 1, 5) and req.response_due == datetime.date(2027, 1, 31)
    assert req.acknowledged_at is not None and mail.outbox[-1].to == ["letter@example.net"]
    assert "verify your identity" in mail.outbox[-1].body
    with pytest.raises(ValidationError):
        request_submit_staff(actor=officer, email="x@example.net", name="", kind="access", region="us_ca",
                             details="", received_at=datetime.datetime(2099, 1, 1, tzinfo=datetime.UTC))


def test_identifiers_and_notes_are_encrypted_at_rest(commit):
    req = _public(commit, details="I was in Contoso's directory")
    officer = make_officer()
    commit(decisions.request_note_add, request_id=req.pk, actor=officer, note="Checked Contoso's directory")
    with connection.cursor() as cursor:
        cursor.execute("SELECT requester_email, requester_name, details FROM privacy_privacyrequest")
        stored = " ".join(cursor.fetchone())
        cursor.execute("SELECT note FROM privacy_privacyrequestevent WHERE action = 'note'")
        note = cursor.fetchone()[0]
    assert "ana@example.org" not in stored and "Ana Lima" not in stored and "Contoso" not in stored
    assert "Contoso" not in note
    assert PrivacyRequestEvent.objects.get(action="note").note == "Checked Contoso's directory"
    assert PrivacyRequest.objects.filter(requester_email_index__isnull=False).count() == 1


def test_the_queue_on_metrics_counts_by_status_and_days_to_due(commit, client):
    with time_machine.travel(T0 - datetime.timedelta(days=60), tick=False):
        overdue = _public(commit, email="late@example.org")  # GDPR/CCPA clocks ran out weeks ago
    with time_machine.travel(T0, tick=False):
        _public(commit, email="fresh@example.org")
        figures = request_queue_figures(today=T0.date())
        text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert figures["by_status"] == {Status.UNVERIFIED: 2}
    assert figures["by_due"] == {"overdue": 1, "within_7_days": 0, "later": 1}
    assert 'portal_privacy_requests_open{status="unverified"} 2.0' in text
    assert 'portal_privacy_requests_due{due="overdue"} 1.0' in text
    assert overdue.reference not in text and "late@example.org" not in text  # counts only


def test_an_agent_names_the_persons_address_which_is_kept_apart_from_theirs(commit):
    with pytest.raises(ValidationError) as refused:
        _public(commit, email="bruno@agents.example", on_behalf=True, agent_name="Ana Lima")
    assert "we look for their information under it" in str(refused.value.message_dict["subject_email"])
    with pytest.raises(ValidationError) as malformed:
        _public(commit, email="bruno@agents.example", on_behalf=True, agent_name="Ana Lima", subject_email="ana@")
    assert "subject_email" in malformed.value.message_dict
    assert not PrivacyRequest.objects.exists()
    req = _public(commit, email="bruno@agents.example", on_behalf=True, agent_name="Ana Lima",
                  subject_email=" Ana@Example.org ")
    assert req.requester_email == "bruno@agents.example" and req.data_subject_email == "Ana@example.org"
    assert mail.outbox[-1].to == ["bruno@agents.example"]  # codes and answers go to the agent
    own = _public(commit, email="carla@example.org", subject_email="someone@example.org")
    assert not own.subject_email and own.data_subject_email == "carla@example.org"
