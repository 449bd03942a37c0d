"""Access reports and portability exports: content from the registry, batches, encryption at rest,
signed expiring downloads, redelivery safety."""

from __future__ import annotations

import datetime
import gc
import hashlib
import io
import json
import zipfile

import pytest
import time_machine
from django.core import mail
from django.test import Client

from accounts.models import SignInEvent
from accounts.tests.factories import MembershipFactory, TOTPDeviceFactory
from accounts.tests.helpers import verified_client
from core.audit import Actor
from core.crypto import DecryptionError, KeyScope
from core.disclosures import disclosure_record
from core.keys import data_key_destroy
from core.models import Disclosure
from licensing.tests.core.factories import SubscriptionFactory
from privacy import access_report
from privacy.models import ExportJob, PrivacyRequest
from privacy.services import exports
from privacy.services import request_decisions as decisions
from privacy.services.requests import request_submit_portal

from .factories import make_officer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.PRIVACY_EXPORT_DIR = str(tmp_path / "exports")


def _sign_in(user, when, ip="198.51.100.7"):
    return SignInEvent.objects.create(user=user, occurred_at=when, succeeded=True, factor="totp", ip_address=ip,
                                      user_agent="Firefox")


def _disclose(org, op, request_id):
    return disclosure_record(recipient=Disclosure.Recipient.MICROSOFT, organization=org, categories=["identity"],
                             purpose=Disclosure.Purpose.PROVISIONING, operation=op, ms_request_id=request_id)


def _unzip(client_response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(client_response.streaming_content)))


def _approved_access(django_capture_on_commit_callbacks, user, officer, kind="access", organization=None):
    with django_capture_on_commit_callbacks(execute=True):
        req = request_submit_portal(user=user, kind=kind, region="eu_uk", organization=organization,
                                    recent_mfa=True)
    with django_capture_on_commit_callbacks(execute=True):  # eager Celery: the export is built on commit
        decisions.request_approve(request_id=req.pk, actor=officer)
    return PrivacyRequest.objects.get(pk=req.pk)


def test_access_report_covers_the_subject_since_2022_and_nobody_else(django_capture_on_commit_callbacks):
    membership = MembershipFactory()
    user, org = membership.user, membership.organization
    colleague = MembershipFactory(organization=org).user  # same organisation, another person
    stranger_org = MembershipFactory().organization
    TOTPDeviceFactory(user=user)
    _sign_in(user, datetime.datetime(2022, 3, 1, 8, 30, tzinfo=datetime.UTC), ip="198.51.100.1")
    _sign_in(user, datetime.datetime(2021, 12, 31, 23, 59, tzinfo=datetime.UTC), ip="198.51.100.2")
    _sign_in(colleague, datetime.datetime(2023, 5, 5, tzinfo=datetime.UTC), ip="203.0.113.9")
    _disclose(org, "customer.create", "r-ours")
    _disclose(stranger_org, "customer.create", "r-theirs")
    officer = make_officer()
    req = _approved_access(django_capture_on_commit_callbacks, user, officer)
    job = req.export
    assert job.status == ExportJob.Status.READY and job.rows_done == job.rows_total > 0
    client = verified_client(Client(), user)
    page = client.get(f"/privacy/mine/{req.reference}/").content.decode()
    assert "Download" in page
    token = exports.download_token(job)
    response = client.get(f"/privacy/exports/{token}/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Cache-Control"] == "no-store"
    archive = _unzip(response)
    names = set(archive.namelist())
    assert {"report.html", "manifest.json", "data/accounts.signinevent.json", "data/accounts.signinevent.csv",
            "data/disclosures.json", "data/retention.csv"} <= names
    sign_ins = json.loads(archive.read("data/accounts.signinevent.json"))
    assert [s["ip_address"] for s in sign_ins] == ["198.51.100.1"]  # 2021 excluded, colleague excluded
    assert sign_ins[0]["occurred_at"].startswith("2022-03-01")
    users = json.loads(archive.read("data/accounts.user.json"))
    assert users[0]["email"] == user.email and users[0]["password"] == "Held, not shown (security)"
    totp = json.loads(archive.read("data/accounts.totpdevice.json"))
    assert totp[0]["key"] == "Held, not shown (security)"
    disclosures = json.loads(archive.read("data/disclosures.json"))
    assert [d["operation"] for d in disclosures] == ["customer.create"] and disclosures[0]["recipient"] == "microsoft"
    html = archive.read("report.html").decode()
    assert "198.51.100.1" in html and "198.51.100.2" not in html and "203.0.113.9" not in html
    assert colleague.email not in html and "r-theirs" not in json.dumps(disclosures)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["schema_version"] == "1"
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest
    assert "your file is ready" in mail.outbox[-1].subject


def test_export_is_encrypted_at_rest_and_dies_with_the_request_key(django_capture_on_commit_callbacks):
    user = MembershipFactory().user
    req = _approved_access(django_capture_on_commit_callbacks, user, make_officer())
    raw = (exports.export_dir() / req.export.file_name).read_bytes()
    assert raw.startswith(b"CLPX1") and b"PK\x03\x04" not in raw[:64] and user.email.encode() not in raw
    data_key_destroy(scope=KeyScope("subject", str(req.pk)), actor=Actor.system("test"))
    with pytest.raises(DecryptionError):
        b"".join(exports.export_chunks(job=req.export, actor=Actor.system("test")))


def test_a_redelivered_build_does_nothing(django_capture_on_commit_callbacks):
    req = _approved_access(django_capture_on_commit_callbacks, MembershipFactory().user, make_officer())
    job = req.export
    before = (exports.export_dir() / job.file_name).read_bytes()
    assert exports.export_build(job_id=job.pk) is None
    assert (exports.export_dir() / job.file_name).read_bytes() == before
    # While another worker holds the lease, a second delivery also steps aside.
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.RUNNING,
                                               lease_until=datetime.datetime(2999, 1, 1, tzinfo=datetime.UTC))
    assert exports.export_build(job_id=job.pk) is None


def test_only_the_requester_or_an_officer_downloads_with_recent_mfa(django_capture_on_commit_callbacks):
    user = MembershipFactory().user
    officer = make_officer()
    req = _approved_access(django_capture_on_commit_callbacks, user, officer)
    url = f"/privacy/exports/{exports.download_token(req.export)}/"
    assert verified_client(Client(), MembershipFactory().user).get(url).status_code == 404
    stale = verified_client(Client(), user, recent_mfa=False).get(url)
    assert stale.status_code == 302 and "/accounts/mfa/verify/" in stale["Location"]
    assert verified_client(Client(), officer).get(url).status_code == 200
    assert Client().get(url).status_code == 302
    assert verified_client(Client(), user).get("/privacy/exports/forged-token/").status_code == 404
    assert ExportJob.objects.get(pk=req.export.pk).downloads == 1


def test_link_expires_and_the_file_is_purged(django_capture_on_commit_callbacks, settings):
    user = MembershipFactory().user
    req = _approved_access(django_capture_on_commit_callbacks, user, make_officer())
    url = f"/privacy/exports/{exports.download_token(req.export)}/"
    path = exports.export_dir() / req.export.file_name
    later = datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(days=settings.PRIVACY_EXPORT_TTL_DAYS, hours=1)
    with time_machine.travel(later):
        client = verified_client(Client(), user)
        assert client.get(url).status_code == 404
        assert exports.export_purge_expired() == 1
        assert exports.export_purge_expired() == 0
    assert not path.exists() and ExportJob.objects.get(pk=req.export.pk).status == ExportJob.Status.EXPIRED


def test_portability_export_holds_the_organisations_license_history_only(django_capture_on_commit_callbacks):
    membership = MembershipFactory()
    ours = SubscriptionFactory(organization=membership.organization, product_title="Microsoft 365 E3")
    SubscriptionFactory(product_title="Someone else's E5")
    req = _approved_access(django_capture_on_commit_callbacks, membership.user, make_officer(), kind="portability",
                           organization=membership.organization)
    client = verified_client(Client(), membership.user)
    archive = _unzip(client.get(f"/privacy/exports/{exports.download_token(req.export)}/"))
    subscriptions = json.loads(archive.read("data/licensing.subscription.json"))
    assert [s["id"] for s in subscriptions] == [str(ours.pk)]
    assert "Someone else" not in archive.read("data/licensing.subscription.csv").decode()


def test_sections_read_in_batches_keep_every_row_once():
    user = MembershipFactory().user
    for day in range(1, 8):
        _sign_in(user, datetime.datetime(2024, 1, day, tzinfo=datetime.UTC), ip=f"198.51.100.{day}")
    section = next(s for s in access_report.access_sections(user) if s.key == "accounts.signinevent")
    batches = list(section.iter_rows(batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert section.count() == 7
    # Encrypted columns are decrypted without model instances; each column appears once (the time too).
    rows = [row for batch in batches for row in batch]
    assert [r["ip_address"] for r in rows] == [f"198.51.100.{day}" for day in range(1, 8)]
    assert {r["user_agent"] for r in rows} == {"Firefox"} and rows[0]["ip_index"].startswith("Held, not shown")
    names = [c.name for c in section.columns]
    assert len(names) == len(set(names)) and list(rows[0]) == names


def test_a_failed_export_is_shown_and_the_officer_starts_it_again(django_capture_on_commit_callbacks, monkeypatch):
    user, officer_user = MembershipFactory().user, make_officer()

    def broken(request):
        raise RuntimeError("disk full")

    monkeypatch.setattr(exports, "_sections", broken)
    with pytest.raises(RuntimeError):
        _approved_access(django_capture_on_commit_callbacks, user, officer_user)
    req = PrivacyRequest.objects.get()
    assert req.export.status == ExportJob.Status.FAILED and req.export.error == "disk full"
    officer = verified_client(Client(), officer_user)
    assert "Prepare the file again" in officer.get(f"/privacy/console/{req.pk}/").content.decode()
    assert "will prepare it again" in verified_client(Client(), user).get(
        f"/privacy/mine/{req.reference}/").content.decode()
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        officer.post(f"/privacy/console/{req.pk}/export/retry/")
    assert ExportJob.objects.get(pk=req.export.pk).status == ExportJob.Status.READY


def test_a_failure_while_a_section_is_read_in_a_transaction_leaves_the_job_failed(monkeypatch):
    """Tenant sources, and the person's own audit events outside any organisation, are read inside a
    transaction: a failure must end it before the job is marked failed, or rolling it back later would
    take the failure with it."""
    user = MembershipFactory().user
    request = request_submit_portal(user=user, kind="access", region="eu_uk", recent_mfa=True)  # audited
    PrivacyRequest.objects.filter(pk=request.pk).update(status=PrivacyRequest.Status.APPROVED)
    job = ExportJob.objects.create(request=request)
    encode = exports._json

    def full_disk(row):
        if "action" in row:  # an audit event row
            raise OSError("disk full")
        return encode(row)

    monkeypatch.setattr(exports, "_json", full_disk)
    with pytest.raises(OSError):
        exports.export_build(job_id=job.pk)
    gc.collect()  # whatever still held the section's reader is gone now
    job.refresh_from_db()
    assert (job.status, job.error) == (ExportJob.Status.FAILED, "disk full")
