"""Privacy request pages through the test client: public form with email code, the person's own
requests, and the officer's console (staff with the permission, MFA, decisions need recent MFA)."""

from __future__ import annotations

import datetime
import re

import pytest
import time_machine
from django.core import mail
from django.test import Client

from accounts.tests.factories import MembershipFactory, UserFactory
from accounts.tests.helpers import verified_client
from core.disclosures import disclosure_record
from core.models import Disclosure
from core.registry import personal_fields
from privacy.models import PrivacyRequest
from privacy.services.requests import request_submit_portal, request_submit_public

from .factories import last_code, make_officer

pytestmark = pytest.mark.django_db
Status = PrivacyRequest.Status
T0 = datetime.datetime(2026, 1, 31, 10, 0, tzinfo=datetime.UTC)


def test_public_request_is_verified_by_email_code_without_javascript(django_capture_on_commit_callbacks):
    browser = Client()
    form = browser.get("/privacy/requests/new/").content.decode()
    assert 'name="email"' in form and "<script" not in form.split("<main", 1)[1].split("</main>")[0]
    assert browser.post("/privacy/requests/new/", {"email": "nope", "kind": "access"}).status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post("/privacy/requests/new/", {"name": "Dir User", "email": "dir.user@contoso.example",
                                                           "kind": "deletion", "region": "eu_uk", "details": ""})
    assert response.status_code == 302
    verify_url = response["Location"]
    req = PrivacyRequest.objects.get()
    assert req.status == Status.UNVERIFIED and req.channel == "public_form"
    page = browser.post(verify_url, {"code": "000000" if last_code("dir.user@contoso.example") != "000000" else "1"})
    assert page.status_code == 400 and "tries left" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        page = browser.post(verify_url, {"code": last_code("dir.user@contoso.example")})
    assert page.status_code == 200 and "your request is confirmed" in page.content.decode()
    assert PrivacyRequest.objects.get().status == Status.OPEN
    assert mail.outbox[-1].subject.startswith("We received your privacy request")
    # A tampered link is a 404, not someone else's request.
    assert browser.get(verify_url[:-3] + "xx/").status_code == 404


def test_resend_gives_a_new_code_and_the_old_one_stops_working(django_capture_on_commit_callbacks):
    browser = Client()
    with django_capture_on_commit_callbacks(execute=True):
        verify_url = browser.post("/privacy/requests/new/", {"name": "A", "email": "a@example.org", "kind": "access",
                                                             "region": "us_ca"})["Location"]
    old = last_code("a@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(verify_url, {"action": "resend"})
    new = last_code("a@example.org")
    if old != new:
        assert browser.post(verify_url, {"code": old}).status_code == 400
    assert browser.post(verify_url, {"code": new}).status_code == 200


def test_people_see_only_their_own_requests():
    ana, bob = MembershipFactory().user, MembershipFactory().user
    mine = request_submit_portal(user=ana, kind="access", region="eu_uk", recent_mfa=True)
    theirs = request_submit_portal(user=bob, kind="access", region="eu_uk", recent_mfa=True)
    client = verified_client(Client(), ana)
    page = client.get("/privacy/mine/").content.decode()
    assert mine.reference in page and theirs.reference not in page
    assert client.get(f"/privacy/mine/{mine.reference}/").status_code == 200
    assert client.get(f"/privacy/mine/{theirs.reference}/").status_code == 404


def test_new_portal_request_needs_a_recent_second_factor():
    membership = MembershipFactory()
    stale = verified_client(Client(), membership.user, recent_mfa=False)
    response = stale.get("/privacy/mine/new/")
    assert response.status_code == 302 and "/accounts/mfa/verify/" in response["Location"]
    fresh = verified_client(Client(), membership.user)
    response = fresh.post("/privacy/mine/new/", {"kind": "portability", "region": "us_ca",
                                                 "organization": str(membership.organization.pk)})
    req = PrivacyRequest.objects.get()
    assert response["Location"] == f"/privacy/mine/{req.reference}/"
    assert req.organization == membership.organization and req.status == Status.OPEN
    # A correction must say what is wrong.
    assert fresh.post("/privacy/mine/new/", {"kind": "correction", "region": "us_ca"}).status_code == 400


def test_console_is_for_privacy_officers_only():
    assert Client().get("/privacy/console/").status_code == 302  # sign in first
    customer = verified_client(Client(), MembershipFactory().user)
    assert customer.get("/privacy/console/").status_code == 404
    other_staff = verified_client(Client(), UserFactory(is_staff=True))
    assert other_staff.get("/privacy/console/").status_code == 404
    officer = make_officer()
    unverified = Client()
    unverified.force_login(officer)
    assert unverified.get("/privacy/console/")["Location"].startswith("/accounts/mfa/")
    assert verified_client(Client(), officer).get("/privacy/console/").status_code == 200


def test_queue_sorted_by_due_date_with_flags():
    with time_machine.travel(T0, tick=False):
        late = request_submit_public(email="late@example.org", name="", kind="access", region="eu_uk")  # 2 Mar
    with time_machine.travel(datetime.datetime(2026, 2, 5, tzinfo=datetime.UTC), tick=False):
        risky = request_submit_public(email="risk@example.org", name="", kind="access", region="eu_uk")  # 5 Mar
    with time_machine.travel(datetime.datetime(2026, 2, 20, tzinfo=datetime.UTC), tick=False):
        calm = request_submit_public(email="calm@example.org", name="", kind="access", region="eu_uk")  # 20 Mar
        closed = request_submit_public(email="done@example.org", name="", kind="access", region="eu_uk")
    PrivacyRequest.objects.filter(pk=closed.pk).update(status=Status.DENIED)
    officer_user = make_officer()
    with time_machine.travel(datetime.datetime(2026, 3, 3, 9, tzinfo=datetime.UTC)):
        officer = verified_client(Client(), officer_user)
        html = officer.get("/privacy/console/").content.decode()
        closed_page = officer.get("/privacy/console/?state=closed").content.decode()
        found = officer.get("/privacy/console/?q=CALM@example.org").content.decode()
    positions = [html.index(r.reference) for r in (late, risky, calm)]
    assert positions == sorted(positions)
    assert closed.reference not in html
    rows = {r.reference: html[html.index(r.reference):].split("</tr>", 1)[0] for r in (late, risky, calm)}
    assert "Overdue" in rows[late.reference] and "At risk" in rows[risky.reference]
    assert "Overdue" not in rows[calm.reference] and "At risk" not in rows[calm.reference]
    assert closed.reference in closed_page and late.reference not in closed_page
    assert calm.reference in found and late.reference not in found


def test_officer_works_a_request_from_the_desk(django_capture_on_commit_callbacks):
    officer_user = make_officer(full_name="Olga Officer")
    officer = verified_client(Client(), officer_user)
    with django_capture_on_commit_callbacks(execute=True):
        req = request_submit_public(email="p@example.org", name="Pat", kind="access", region="us_ca")
    desk = f"/privacy/console/{req.pk}/"
    assert "Not yet" in officer.get(desk).content.decode()
    refused = officer.post(desk + "approve/", {})
    assert refused.status_code == 409 and "Verify the requester" in refused.content.decode()
    officer.post(desk + "verify/", {"verify-note": "Matched invoice number"})
    officer.post(desk + "assign/", {"officer": str(officer_user.pk)})
    officer.post(desk + "note/", {"note": "Looked in the archive"})
    with django_capture_on_commit_callbacks(execute=True):
        assert officer.post(desk + "approve/", {}).status_code == 302
    subjects = [m.subject for m in mail.outbox]
    assert f"Your privacy request {req.reference} is approved" in subjects
    assert f"Your privacy request {req.reference}: your file is ready" in subjects  # the access report was built
    with django_capture_on_commit_callbacks(execute=True):
        officer.post(desk + "extend/", {"extend-reason": "Many archives"})
    assert officer.post(desk + "extend/", {"extend-reason": "Again"}).status_code == 409
    assert officer.post(desk + "deny/", {"deny-reason": ""}).status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        officer.post(desk + "complete/", {"complete-note": "Report sent"})
    req.refresh_from_db()
    assert req.status == Status.COMPLETED and req.assigned_to == officer_user and req.extended_at
    history = officer.get(desk).content.decode()
    for step in ("Identity verified", "Assigned", "Looked in the archive", "Approved", "Deadline extended",
                 "Completed", "Olga Officer"):
        assert step in history
    # The requester's own view never shows the officers' internal notes.
    assert "Looked in the archive" not in "".join(m.body for m in mail.outbox)


def test_decisions_need_a_recent_second_factor():
    req = request_submit_public(email="p@example.org", name="", kind="access", region="us_ca")
    stale = verified_client(Client(), make_officer(), recent_mfa=False)
    assert stale.get(f"/privacy/console/{req.pk}/").status_code == 200
    response = stale.post(f"/privacy/console/{req.pk}/deny/", {"deny-reason": "No"})
    assert response.status_code == 302 and "/accounts/mfa/verify/" in response["Location"]
    assert PrivacyRequest.objects.get(pk=req.pk).status == Status.UNVERIFIED


def test_staff_enter_a_request_received_by_post(django_capture_on_commit_callbacks):
    officer = verified_client(Client(), make_officer())
    with django_capture_on_commit_callbacks(execute=True):
        response = officer.post("/privacy/console/new/", {
            "name": "Letter Writer", "email": "letter@example.net", "kind": "deletion", "region": "eu_uk",
            "details": "Letter dated 2 Jan", "received_on": "2026-01-05",
        })
    req = PrivacyRequest.objects.get()
    assert response["Location"] == f"/privacy/console/{req.pk}/"
    assert req.channel == "staff" and req.response_due == datetime.date(2026, 2, 5)
    assert re.search(r"received your privacy request", mail.outbox[-1].subject)


def test_the_data_inventory_lists_every_registry_field_with_retention_and_recipients():
    disclosure_record(recipient=Disclosure.Recipient.MICROSOFT, organization=MembershipFactory().organization,
                      categories=["identity"], purpose=Disclosure.Purpose.PROVISIONING, operation="x",
                      ms_request_id="inv-1")
    officer = verified_client(Client(), make_officer())
    html = officer.get("/privacy/console/inventory/").content.decode()
    for ref in personal_fields():
        assert f"<code>{ref.model._meta.label_lower}</code>" in html and f"<code>{ref.field_name}</code>" in html
    assert "Recipients: Microsoft" in html and "described, not shown" in html
    assert verified_client(Client(), MembershipFactory().user).get("/privacy/console/inventory/").status_code == 404
