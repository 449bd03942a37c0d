"""Row-level security on privacy requests, their history and authorisation documents (decision 048).

As raw SQL under the application role: with nobody in scope no request, event or document is readable; a person's
own context shows their requests and nothing of anyone else's, a request's context that request alone, an
organisation's context none; another's rows cannot be changed, deleted, handed over or planted. End to end, as the
application role with the system role on its own connection (``ProductionRoles``): a public request submitted and
verified by its emailed code, an agent's upload, the officer's queue, desk and decisions (verify, approve with the
access report built and downloaded, extend, deny, complete), the authorisation document's download, a signed-in
person's request and its page, the request records, the queue metrics and retention; without the system role each
cross-request reader shows nothing and nothing fails.
"""

from __future__ import annotations

import csv
import datetime
import importlib
import io
import re

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import MembershipFactory
from accounts.tests.helpers import verified_client
from core.tenancy import person_context, privacy_request_context, tenant_context, unscoped_no_tenant
from privacy.models import AuthorizationDocument, Erasure, PrivacyRequest, PrivacyRequestEvent
from privacy.selectors import (
    REQUEST_RECORD_COLUMNS,
    officer_queue,
    request_queue_figures,
    request_queue_metrics,
    request_record_rows,
)
from privacy.services.authorizations import authorization_files_purge_orphans
from privacy.services.requests import request_submit_portal, request_submit_public
from privacy.services.retention import retention_purge
from privacy.tasks import run_due_erasures
from privacy.tests.factories import last_code, make_officer
from tests.test_rls import PROBE_ROLE, ProductionRoles, fetch, tables_with_policy
from tests.test_rls import roles as probe_roles  # noqa: F401  (a fixture: found under this name)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-level security needs PostgreSQL"),
]

MIGRATION = importlib.import_module("portal.migrations.0011_rls_privacy_requests")
TABLES = ("privacy_privacyrequest", "privacy_privacyrequestevent", "privacy_authorizationdocument")
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40
FORM = "/privacy/requests/new/"


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    settings.PRIVACY_EXPORT_DIR = str(tmp_path / "exports")
    return tmp_path / "exports"


def _upload(name="authorisation.pdf"):
    return SimpleUploadedFile(name, PDF, content_type="application/pdf")


def _agent_request(email):
    return request_submit_public(email=email, name="Bruno Agent", kind="access", region="us_ca", on_behalf=True,
                                 agent_name="Ana Lima", subject_email="ana@example.org", authorization=_upload())


def test_the_migration_puts_the_request_policy_on_the_three_tables(db):
    assert set(MIGRATION.REQUEST_SCOPED) == set(TABLES)
    assert set(TABLES) <= tables_with_policy("request_scope")


def _ids(table, column="id"):
    return {row[0] for row in fetch(f"SELECT {column} FROM {table}")}


@pytest.mark.usefixtures("probe_roles")  # the application and system roles exist, for this transaction
def test_another_persons_or_requests_rows_are_out_of_reach_of_the_application_role():
    alice, bobs_membership = MembershipFactory().user, MembershipFactory()
    bob, org_of_bob = bobs_membership.user, bobs_membership.organization
    mine = request_submit_portal(user=alice, kind="access", region="eu_uk", recent_mfa=True)
    bobs = request_submit_portal(user=bob, kind="access", region="eu_uk", recent_mfa=True, organization=org_of_bob)
    public = _agent_request("agent@agents.example")
    events = {r.pk: set(PrivacyRequestEvent.objects.filter(request=r).values_list("pk", flat=True))
              for r in (mine, bobs, public)}
    document = AuthorizationDocument.objects.get(request=public)
    assert all(events.values())

    fetch(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {PROBE_ROLE}")
    fetch(f"SET LOCAL ROLE {PROBE_ROLE}")
    for table in TABLES:  # nobody in scope (or an organisation's context): no row at all
        assert fetch(f"SELECT count(*) FROM {table}")[0][0] == 0, table
    with tenant_context(org_of_bob):
        for table in TABLES:
            assert fetch(f"SELECT count(*) FROM {table}")[0][0] == 0, table

    with person_context(alice):  # the person's own requests and their history, nobody else's
        assert _ids("privacy_privacyrequest") == {mine.pk}
        assert _ids("privacy_privacyrequestevent") == events[mine.pk]
        assert _ids("privacy_authorizationdocument") == set()
        for other in (bobs, public):
            assert fetch("UPDATE privacy_privacyrequest SET status = 'denied' WHERE id = %s RETURNING id",
                         [other.pk]) == []
            assert fetch("DELETE FROM privacy_privacyrequest WHERE id = %s RETURNING id", [other.pk]) == []
            assert fetch("DELETE FROM privacy_privacyrequestevent WHERE request_id = %s RETURNING id",
                         [other.pk]) == []
        assert fetch("DELETE FROM privacy_authorizationdocument WHERE id = %s RETURNING id", [document.pk]) == []
        # Nor can one of her own requests be handed to Bob, or history planted on his.
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            fetch("UPDATE privacy_privacyrequest SET requester_id = %s WHERE id = %s", [bob.pk, mine.pk])
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            PrivacyRequestEvent.objects.create(request_id=bobs.pk, action="note", actor_label="system")
        assert fetch("UPDATE privacy_authorizationdocument SET request_id = %s WHERE id = %s RETURNING id",
                     [mine.pk, document.pk]) == []

    with privacy_request_context(public.pk):  # one request's context: that request, its history and document
        assert _ids("privacy_privacyrequest") == {public.pk}
        assert _ids("privacy_privacyrequestevent") == events[public.pk]
        assert _ids("privacy_authorizationdocument") == {document.pk}
        assert fetch("UPDATE privacy_privacyrequest SET status = 'denied' WHERE id = %s RETURNING id",
                     [mine.pk]) == []
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            fetch("UPDATE privacy_authorizationdocument SET request_id = %s WHERE id = %s", [mine.pk, document.pk])
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            PrivacyRequestEvent.objects.create(request_id=mine.pk, action="note", actor_label="system")
    for table in TABLES:  # left the contexts: nothing again
        assert fetch(f"SELECT count(*) FROM {table}")[0][0] == 0, table
    fetch("RESET ROLE")
    assert PrivacyRequest.objects.filter(status="denied").count() == 0
    assert AuthorizationDocument.objects.get().request_id == public.pk
    assert {r.requester_id for r in PrivacyRequest.objects.filter(pk__in=[mine.pk, bobs.pk])} == {alice.pk, bob.pk}


def _csrf_browser():
    browser = Client(enforce_csrf_checks=True, REMOTE_ADDR="203.0.113.48")
    page = browser.get(FORM).content.decode()
    return browser, re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


@pytest.mark.django_db(transaction=True)
def test_the_request_workflow_runs_as_the_application_role(settings, export_dir):
    officer_user = make_officer(full_name="Olga Officer")
    person = MembershipFactory().user
    stranger = MembershipFactory().user
    with ProductionRoles(settings) as production:
        # A public request, submitted by an agent with the authorisation and verified by the emailed code.
        browser, token = _csrf_browser()
        response = browser.post(FORM, {
            "name": "Bruno Agent", "email": "bruno@agents.example", "kind": "access", "region": "us_ca",
            "details": "", "on_behalf": "on", "agent_name": "Ana Lima", "subject_email": "ana@example.org",
            "document": _upload("Ana Lima signed.pdf"), "csrfmiddlewaretoken": token,
        })
        assert response.status_code == 302, response.content
        verify_url = response["Location"]
        assert browser.get(verify_url).status_code == 200
        wrong = browser.post(verify_url, {"code": "1", "csrfmiddlewaretoken": token})
        assert wrong.status_code == 400 and "tries left" in wrong.content.decode()
        confirmed = browser.post(verify_url, {"code": last_code("bruno@agents.example"), "csrfmiddlewaretoken": token})
        assert confirmed.status_code == 200 and "your request is confirmed" in confirmed.content.decode()
        assert not PrivacyRequest.objects.exists()  # outside any context the application role sees no request
        with unscoped_no_tenant():
            agents = PrivacyRequest.objects.get(channel="public_form")
            document = AuthorizationDocument.objects.get(request=agents)
            assert agents.status == PrivacyRequest.Status.OPEN and agents.code_failures == 1

        # A signed-in person's own request, and their pages.
        mine = verified_client(Client(), person)
        response = mine.post("/privacy/mine/new/", {"kind": "access", "region": "eu_uk"})
        assert response.status_code == 302, response.content
        page = mine.get(response["Location"])
        assert page.status_code == 200 and "Received" in page.content.decode()
        with person_context(person):
            own = PrivacyRequest.objects.get(requester=person)
        assert own.reference in mine.get("/privacy/mine/").content.decode()
        theirs = verified_client(Client(), stranger)
        assert own.reference not in theirs.get("/privacy/mine/").content.decode()
        assert theirs.get(f"/privacy/mine/{own.reference}/").status_code == 404

        # The officer's queue lists every request (as the system role); the desk shows one, with its history.
        officer = verified_client(Client(), officer_user)
        queue = officer.get("/privacy/console/").content.decode()
        assert agents.reference in queue and own.reference in queue
        desk = f"/privacy/console/{agents.pk}/"
        shown = officer.get(desk).content.decode()
        assert "Identity verified" in shown and "not yet checked" in shown
        link = reverse("privacy:console_authorization_document", args=[agents.pk, document.pk])
        assert b"".join(officer.get(link).streaming_content) == PDF
        recorded = officer.post(reverse("privacy:console_authorization", args=[agents.pk]),
                                {"authorization-note": "Signature matches"})
        assert recorded.status_code == 302, recorded.content
        officer.post(desk + "assign/", {"officer": str(officer_user.pk)})
        officer.post(desk + "note/", {"note": "Looked in the archive"})
        # Approval builds the access report (a task, eager here) in the request's context; the officer downloads it.
        assert officer.post(desk + "approve/", {}).status_code == 302
        approved = officer.get(desk)
        assert approved.context["job"].status == "ready", approved.context["job"].error
        download = officer.get(reverse("privacy:export_download", args=[approved.context["token"]]))
        assert download.status_code == 200 and b"".join(download.streaming_content)[:2] == b"PK"
        assert officer.post(desk + "extend/", {"extend-reason": "Many archives"}).status_code == 302
        assert officer.post(desk + "complete/", {"complete-note": "Report sent"}).status_code == 302
        history = officer.get(desk).content.decode()
        for step in ("Authorisation", "Assigned", "Looked in the archive", "Approved", "Deadline extended",
                     "Completed", "Olga Officer"):
            assert step in history, step
        # The signed-in person's request: verified by the session, denied with a reason.
        own_desk = f"/privacy/console/{own.pk}/"
        assert officer.post(own_desk + "deny/", {"deny-reason": "Duplicate of an earlier request"}).status_code == 302
        assert "Duplicate of an earlier request" in mine.get(f"/privacy/mine/{own.reference}/").content.decode()
        # A request the officer enters from a letter, verified on the desk.
        entered = officer.post("/privacy/console/new/", {
            "name": "Letter Writer", "email": "letter@example.net", "kind": "access", "region": "eu_uk",
            "details": "Letter", "received_on": "2026-01-05",
        })
        assert entered.status_code == 302, entered.content
        verified = officer.post(entered["Location"] + "verify/", {"verify-note": "Matched the signature"})
        assert verified.status_code == 302, verified.content

        # The request records and the queue metrics read every request as the system role.
        records = b"".join(officer.get("/privacy/console/requests.csv").streaming_content).decode()
        references = {row[0] for row in csv.reader(io.StringIO(records))}
        assert {agents.reference, own.reference} <= references and len(references) == 4  # header, three requests
        figures = request_queue_figures(today=own.received_at.date())
        assert sum(figures["by_status"].values()) == 1  # the entered one, verified and open
        assert [family.name for family in request_queue_metrics()] == ["portal_privacy_requests_open",
                                                                       "portal_privacy_requests_due"]
        assert authorization_files_purge_orphans(now=document.created_at) == 0

        # Without the system role (no page is served then: nobody's session is found, decision 043): the queue and
        # the records list no request, the metrics give no figures, and the file sweep keeps every file.
        production.system_configured(False)
        with unscoped_no_tenant():
            assert not officer_queue(include_closed=True).exists()
        assert list(request_record_rows()) == [REQUEST_RECORD_COLUMNS]
        assert request_queue_figures(today=own.received_at.date()) is None
        assert list(request_queue_metrics()) == []
        assert authorization_files_purge_orphans(now=document.created_at.replace(year=2100)) == 0
        assert (export_dir / "authorizations" / f"{document.pk}.bin").exists()
        production.system_configured(True)
    assert PrivacyRequest.objects.get(pk=agents.pk).status == PrivacyRequest.Status.COMPLETED
    assert PrivacyRequest.objects.get(pk=own.pk).status == PrivacyRequest.Status.DENIED



@pytest.mark.django_db(transaction=True)
def test_deletions_cancelled_and_carried_out_and_old_records_purged_as_the_application_role(settings):
    changes_mind, leaves = MembershipFactory().user, MembershipFactory().user
    officer_user = make_officer()
    with ProductionRoles(settings):
        officer = verified_client(Client(), officer_user)
        person = verified_client(Client(), changes_mind)
        response = person.post("/privacy/mine/new/", {"kind": "deletion", "region": "eu_uk"})
        assert response.status_code == 302, response.content
        reference = response["Location"].rstrip("/").rsplit("/", 1)[1]
        other = request_submit_portal(user=leaves, kind="deletion", region="eu_uk", recent_mfa=True)
        with unscoped_no_tenant():
            cancelled = PrivacyRequest.objects.get(reference=reference)
        for req in (cancelled, other):
            assert officer.post(f"/privacy/console/{req.pk}/approve/", {}).status_code == 302
        # The requester cancels from their own page during the grace period.
        assert "Cancel the deletion" in person.get(f"/privacy/mine/{reference}/").content.decode()
        assert person.post(f"/privacy/mine/{reference}/cancel-deletion/").status_code == 302
        assert Erasure.objects.get(request_id=cancelled.pk).status == Erasure.Status.CANCELLED

        # The nightly task carries out the other one after the grace period, in its request's context.
        after_grace = timezone.now() + datetime.timedelta(days=settings.PRIVACY_ERASURE_GRACE_DAYS, minutes=1)
        with time_machine.travel(after_grace, tick=False):
            assert run_due_erasures() == 1
        with unscoped_no_tenant():
            assert not User.objects.get(pk=leaves.pk).is_active and User.objects.get(pk=changes_mind.pk).is_active
            statuses = dict(PrivacyRequest.objects.values_list("pk", "status"))
        assert statuses == {cancelled.pk: "completed", other.pk: "completed"}

        # Retention purges the closed records after 24 months, with their history, as the system role.
        with time_machine.travel(timezone.now() + datetime.timedelta(days=800), tick=False):
            run = retention_purge()
        assert run.counts.get("privacy.privacyrequest") == 2
        with unscoped_no_tenant():
            assert not PrivacyRequest.objects.exists() and not PrivacyRequestEvent.objects.exists()
