"""An authorised agent attaches the person's signed authorisation to the public request form (issue 9): no
account and no JavaScript, a multipart form with CSRF, checked by first bytes and size, encrypted under the
request's key, shown on the officer's desk as uploaded by the agent; a refused upload keeps nothing and
does not count against the per-address limit."""

from __future__ import annotations

import datetime
import re

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.helpers import verified_client
from core.models import AuditEvent
from privacy.models import AuthorizationDocument, PrivacyRequest
from privacy.services import authorizations
from privacy.services import requests as request_services
from privacy.services.retention import retention_purge

from .factories import make_officer

pytestmark = pytest.mark.django_db

FORM = "/privacy/requests/new/"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    settings.PRIVACY_EXPORT_DIR = str(tmp_path / "exports")
    return tmp_path / "exports" / "authorizations"


def _agent_fields(**overrides) -> dict:
    return {"name": "Bruno Agent", "email": "bruno@agents.example", "kind": "access", "region": "us_ca",
            "details": "", "on_behalf": "on", "agent_name": "Ana Lima",
            "subject_email": "ana@example.org", **overrides}


def _upload(content: bytes, name="authorisation.pdf", content_type="application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def _browser(address: str) -> tuple[Client, str]:
    """A browser with CSRF checks on, as in production, and the token from the form it was served."""
    browser = Client(enforce_csrf_checks=True, REMOTE_ADDR=address)
    page = browser.get(FORM).content.decode()
    assert 'enctype="multipart/form-data"' in page and 'type="file"' in page
    return browser, re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def _nothing_kept(export_dir) -> bool:
    files = list(export_dir.iterdir()) if export_dir.exists() else []
    return not PrivacyRequest.objects.exists() and not AuthorizationDocument.objects.exists() and not files


def test_an_agent_attaches_the_authorisation_and_the_officer_checks_it_on_the_desk(export_dir):
    browser, token = _browser("203.0.113.20")
    assert browser.post(FORM, {**_agent_fields(), "document": _upload(PDF)}).status_code == 403  # no CSRF token
    response = browser.post(FORM, {**_agent_fields(), "document": _upload(PDF, name="Ana Lima signed.pdf"),
                                   "csrfmiddlewaretoken": token})
    assert response.status_code == 302

    req = PrivacyRequest.objects.get()
    document = AuthorizationDocument.objects.get(request=req)
    assert req.on_behalf and req.authorization_received_at is None  # uploaded is not yet checked
    assert (document.source, document.uploaded_by, document.content_type, document.size, document.file_name) == (
        AuthorizationDocument.Source.AGENT_FORM, None, "application/pdf", len(PDF), "Ana Lima signed.pdf")
    stored = (export_dir / f"{document.pk}.bin").read_bytes()
    assert b"%PDF" not in stored and PDF[64:128] not in stored  # encrypted at rest
    assert AuditEvent.unscoped_objects.filter(action="privacy.request_authorization_uploaded",
                                              target_id=str(req.pk)).exists()

    officer = verified_client(Client(), make_officer())
    desk = officer.get(reverse("privacy:console_request", args=[req.pk])).content.decode()
    link = reverse("privacy:console_authorization_document", args=[req.pk, document.pk])
    assert link in desk and "uploaded by the agent with the request form" in desk and "not yet checked" in desk
    assert b"".join(officer.get(link).streaming_content) == PDF

    # The officer records the check without uploading the document again, which unlocks approval.
    recorded = officer.post(reverse("privacy:console_authorization", args=[req.pk]),
                            {"authorization-note": "Signature matches Ana's ID on file"})
    assert recorded.status_code == 302
    req.refresh_from_db()
    assert req.authorization_received_at is not None and AuthorizationDocument.objects.count() == 1


@pytest.mark.parametrize("content, name, message", [
    (b"<html><script>alert(1)</script></html>", "authorisation.pdf", "Upload a PDF, PNG or JPEG file."),
    (b"%PDF-" + b"x" * authorizations.MAX_BYTES, "huge.pdf", "The document must be at most 5 MB."),
])
def test_a_refused_document_keeps_nothing_and_does_not_count_against_the_limit(settings, export_dir, content, name,
                                                                               message):
    settings.PRIVACY_PUBLIC_FORM_PER_IP_HOUR = 1
    browser, token = _browser("203.0.113.21")
    refused = browser.post(FORM, {**_agent_fields(), "document": _upload(content, name=name),
                                  "csrfmiddlewaretoken": token})
    assert refused.status_code == 400 and message in refused.content.decode()
    assert _nothing_kept(export_dir)
    # The address's one submission this hour is still there for the corrected form.
    again = browser.post(FORM, {**_agent_fields(), "document": _upload(PDF), "csrfmiddlewaretoken": token})
    assert again.status_code == 302 and AuthorizationDocument.objects.count() == 1


@pytest.mark.parametrize("overrides, message", [
    ({"agent_name": ""}, "Name the person you act for"),  # refused by the service, after the form accepted it
    ({"on_behalf": ""}, "only when you act on someone else"),
    ({"email": "not-an-address"}, "Enter a valid email address"),
])
def test_a_form_error_leaves_no_request_and_no_file(export_dir, overrides, message):
    browser, token = _browser("203.0.113.22")
    response = browser.post(FORM, {**_agent_fields(**overrides), "document": _upload(PDF),
                                   "csrfmiddlewaretoken": token})
    assert response.status_code == 400 and message in response.content.decode()
    assert _nothing_kept(export_dir)


def test_a_failure_after_the_file_was_written_removes_it_with_the_request(export_dir, monkeypatch):
    def mail_down(**_kwargs):
        raise ConnectionError("mail relay unreachable")

    monkeypatch.setattr(request_services, "request_code_send", mail_down)
    with pytest.raises(ConnectionError):
        request_services.request_submit_public(
            email="bruno@agents.example", name="Bruno Agent", kind="access", region="us_ca", on_behalf=True,
            agent_name="Ana Lima", subject_email="ana@example.org", authorization=_upload(PDF))
    assert _nothing_kept(export_dir)


def test_the_nightly_purge_removes_files_whose_request_record_is_gone(export_dir):
    def submit(email):
        return request_services.request_submit_public(
            email=email, name="Bruno Agent", kind="access", region="us_ca", on_behalf=True, agent_name="Ana Lima",
            subject_email="ana@example.org", authorization=_upload(PDF))

    purged, kept = submit("one@agents.example"), submit("two@agents.example")
    purged_file = export_dir / f"{AuthorizationDocument.objects.get(request=purged).pk}.bin"
    kept_file = export_dir / f"{AuthorizationDocument.objects.get(request=kept).pk}.bin"
    PrivacyRequest.objects.filter(pk=purged.pk).delete()  # as the purge of old request records does
    with time_machine.travel(timezone.now() + datetime.timedelta(hours=2), tick=False):
        run = retention_purge()
    assert run.counts.get("privacy.authorizationdocument files") == 1
    assert not purged_file.exists() and kept_file.exists()
