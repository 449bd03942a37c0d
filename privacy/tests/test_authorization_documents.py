"""An authorised agent's written proof (issue 9): uploaded by the officer with the note, checked by its first
bytes, kept encrypted under the request's key, downloaded only as an attachment, every step audited;
a refused upload keeps nothing."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import MembershipFactory
from accounts.tests.helpers import verified_client
from core.models import AuditEvent
from privacy.models import AuthorizationDocument, PrivacyRequest
from privacy.services import authorizations
from privacy.services import request_decisions as decisions
from privacy.services.requests import PrivacyRequestError, request_submit_staff

from .factories import make_officer

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40  # binary, several AES-GCM chunks would not be needed: one is enough
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    settings.PRIVACY_EXPORT_DIR = str(tmp_path / "exports")
    return tmp_path / "exports" / "authorizations"


def _agent_request(officer, *, on_behalf=True) -> PrivacyRequest:
    return request_submit_staff(
        actor=officer, email="ana@example.org", name="Ana Lima", kind="access", region="us_ca", details="",
        received_at=timezone.now() - datetime.timedelta(days=1), on_behalf=on_behalf,
        agent_name="Bruno Agent" if on_behalf else "", subject_email="bruno@example.org" if on_behalf else "",
    )


def _upload(content: bytes, name="letter.pdf", content_type="application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def test_the_officer_uploads_the_proof_and_downloads_it_as_an_inert_attachment(export_dir):
    officer_user = make_officer()
    req = _agent_request(officer_user)
    officer = verified_client(Client(), officer_user)
    desk = reverse("privacy:console_request", args=[req.pk])

    response = officer.post(reverse("privacy:console_authorization", args=[req.pk]), {
        "authorization-note": "Signed letter from Ana, checked against her ID",
        "authorization-document": _upload(PDF, name="Ana Lima authorisation.pdf"),
    })
    assert response.status_code == 302
    req.refresh_from_db()
    document = AuthorizationDocument.objects.get(request=req)
    assert req.authorization_received_at is not None
    assert (document.content_type, document.size, document.file_name) == (
        "application/pdf", len(PDF), "Ana Lima authorisation.pdf")
    stored = (export_dir / f"{document.pk}.bin").read_bytes()
    assert PDF[:64] not in stored and b"%PDF" not in stored  # encrypted at rest

    link = reverse("privacy:console_authorization_document", args=[req.pk, document.pk])
    assert link in officer.get(desk).content.decode()
    download = officer.get(link)
    assert download.status_code == 200 and b"".join(download.streaming_content) == PDF
    assert download["Content-Disposition"].startswith("attachment;")
    assert download["X-Content-Type-Options"] == "nosniff" and download["Content-Type"] == "application/pdf"
    actions = set(AuditEvent.unscoped_objects.filter(target_id=str(req.pk)).values_list("action", flat=True))
    assert {"privacy.request_authorization_recorded", "privacy.request_authorization_downloaded"} <= actions


@pytest.mark.parametrize("content, name, message", [
    (b"<html><script>alert(1)</script>", "letter.pdf", "PDF, PNG or JPEG"),  # the name and type lie
    (b"", "empty.pdf", "empty"),
    (b"%PDF-" + b"x" * authorizations.MAX_BYTES, "huge.pdf", "at most 5 MB"),
])
def test_a_refused_document_keeps_nothing(export_dir, content, name, message):
    officer_user = make_officer()
    req = _agent_request(officer_user)
    officer = verified_client(Client(), officer_user)
    response = officer.post(reverse("privacy:console_authorization", args=[req.pk]), {
        "authorization-note": "Letter", "authorization-document": _upload(content, name=name),
    })
    assert response.status_code == 400 and message in response.content.decode()
    req.refresh_from_db()
    assert req.authorization_received_at is None and not AuthorizationDocument.objects.exists()
    assert not export_dir.exists() or not any(export_dir.iterdir())


def test_a_request_not_made_by_an_agent_takes_no_document_and_leaves_no_file(export_dir):
    officer = make_officer()
    req = _agent_request(officer, on_behalf=False)
    with pytest.raises(PrivacyRequestError) as refused:
        decisions.request_authorization_record(request_id=req.pk, actor=officer, note="x", document=_upload(PNG))
    assert refused.value.code == "not_on_behalf"
    with pytest.raises(ValidationError):  # no note: refused before the document is written
        decisions.request_authorization_record(request_id=_agent_request(officer).pk, actor=officer, note=" ",
                                               document=_upload(PNG, name="a.png", content_type="image/png"))
    assert not AuthorizationDocument.objects.exists()
    assert not export_dir.exists() or not any(export_dir.iterdir())


def test_only_privacy_officers_reach_a_document():
    officer = make_officer()
    req = _agent_request(officer)
    decisions.request_authorization_record(request_id=req.pk, actor=officer, note="Letter", document=_upload(PDF))
    document = AuthorizationDocument.objects.get()
    link = reverse("privacy:console_authorization_document", args=[req.pk, document.pk])
    assert verified_client(Client(), MembershipFactory().user).get(link).status_code == 404
    other = _agent_request(officer)  # a document is reached only through its own request
    wrong = reverse("privacy:console_authorization_document", args=[other.pk, document.pk])
    assert verified_client(Client(), officer).get(wrong).status_code == 404
