"""Building, delivering and expiring access reports and portability exports.

``export_queue`` creates the request's one export job and enqueues the Celery task after commit.
``export_build`` (the task's body) claims the job with a lease, so a redelivered task finds it running
or ready and does nothing; a job whose worker died is claimed again once the lease lapses and is built
from the start (the output is deterministic). It streams every section in batches to temporary files,
updating progress after each batch, zips ``report.html``, ``data/<section>.json|.csv`` and
``manifest.json`` (SHA-256 of each file), encrypts the zip at rest (``export_crypto``) and emails the
requester. Links expire after ``PRIVACY_EXPORT_TTL_DAYS``; ``export_purge_expired`` deletes the files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import tempfile
import zipfile
from contextlib import closing
from datetime import timedelta
from html import escape as html_escape
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape

from core.audit import Actor
from core.crypto import KeyScope
from core.tenancy import privacy_request_context
from privacy import access_report, export_crypto
from privacy.models import ExportJob, PrivacyRequest
from privacy.selectors import directory_subjects, request_organization, subject_account
from privacy.services.history import history_add, history_audit
from privacy.services.notices import request_email_send

LEASE = timedelta(minutes=30)
SCHEMA_VERSION = "1"
BUILD_TASK = "privacy.build_export"


DOWNLOAD_SALT = "privacy.export-download"


def enqueue_build(job_id: str) -> None:
    current_app.tasks[BUILD_TASK].apply_async(kwargs={"job_id": job_id})


def download_token(job: ExportJob) -> str:
    return signing.dumps(str(job.pk), salt=DOWNLOAD_SALT)


def job_from_token(token: str) -> ExportJob | None:
    """The job a signed download link names, while the link is young enough; else None."""
    try:
        job_id = signing.loads(token, salt=DOWNLOAD_SALT, max_age=settings.PRIVACY_EXPORT_TTL_DAYS * 86400)
    except signing.BadSignature:
        return None
    # The job alone: its request is read in the request's context (decision 048), which the job names.
    return ExportJob.objects.filter(pk=job_id).first()


def export_dir() -> Path:
    path = Path(settings.PRIVACY_EXPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


@transaction.atomic
def export_queue(*, request: PrivacyRequest, enqueue) -> ExportJob:
    """Create the request's export job (once) and hand its id to ``enqueue`` after commit."""
    job, created = ExportJob.objects.get_or_create(request=request)
    if created:
        history_add(request, "note", note="Export queued")
    transaction.on_commit(lambda: enqueue(str(job.pk)))
    return job


def _request_of(job_id):
    """The id of the request an export job is for: the context its writes run in (decision 048)."""
    return ExportJob.objects.values_list("request_id", flat=True).get(pk=job_id)


def export_retry(*, job_id, actor, enqueue) -> ExportJob:
    """The officer starts a failed export again (after fixing its cause); it is built from the start."""
    with privacy_request_context(_request_of(job_id)):
        job = ExportJob.objects.select_for_update().select_related("request").get(pk=job_id)
        return _retry(job, actor=actor, enqueue=enqueue)


def _retry(job: ExportJob, *, actor, enqueue) -> ExportJob:
    if job.status == ExportJob.Status.FAILED:
        job.status, job.error = ExportJob.Status.QUEUED, ""
        job.save(update_fields=["status", "error", "updated_at"])
        history_add(job.request, "note", actor=actor, note="Export started again")
        transaction.on_commit(lambda: enqueue(str(job.pk)))
    return job


def _claim(job_id) -> ExportJob | None:
    request_id = ExportJob.objects.filter(pk=job_id).values_list("request_id", flat=True).first()
    if request_id is None:
        return None
    with privacy_request_context(request_id):
        job = ExportJob.objects.select_for_update().select_related("request").filter(pk=job_id).first()
        if job is None:
            return None
        now = timezone.now()
        if job.status in (ExportJob.Status.READY, ExportJob.Status.EXPIRED):
            return None
        if job.status == ExportJob.Status.RUNNING and job.lease_until and job.lease_until > now:
            return None  # another delivery of this task is building it
        job.status, job.started_at, job.lease_until = ExportJob.Status.RUNNING, now, now + LEASE
        job.rows_done, job.error = 0, ""
        job.save(update_fields=["status", "started_at", "lease_until", "rows_done", "error", "updated_at"])
        return job


def _sections(request: PrivacyRequest) -> list[access_report.Section]:
    if request.kind == PrivacyRequest.Kind.PORTABILITY:
        organization = request_organization(request)
        if organization is None:
            raise ValueError("A portability export needs an organisation.")
        return access_report.portability_sections(organization)
    subject = subject_account(request)
    people = (directory_subjects(request.data_subject_email, request_organization(request))
              if request.data_subject_email else [])
    sections = access_report.access_sections(subject) if subject is not None else []
    if people:  # the same address in customers' directories: what we hold about them there too
        sections += access_report.directory_sections(people)
    return sections or [access_report.retention_section(access_report.Subject.PORTAL_USER)]


# One encoder for every row (json.dumps with options builds a new one per call), and a quick test so
# the many cells without markup characters skip escaping.
_json = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode
_unsafe = re.compile(r"[&<>\"']").search


def _write_section(section, work: Path, html, progress) -> list[str]:
    names = [c.name for c in section.columns]
    json_path, csv_path = work / "data" / f"{section.key}.json", work / "data" / f"{section.key}.csv"
    html.write(f"<section><h2>{escape(section.title)}</h2><table><thead><tr>")
    html.write("".join(f"<th>{escape(n)}</th>" for n in names) + "</tr></thead><tbody>")
    count = 0
    cell = access_report.as_csv_cell
    with (json_path.open("w", encoding="utf-8") as js, csv_path.open("w", encoding="utf-8", newline="") as cs,
          closing(section.iter_rows()) as batches):
        writer = csv.writer(cs)
        writer.writerow(names)
        js.write("[")
        for batch in batches:
            # Each batch is rendered once into strings and written in one call per file: per-cell
            # calls (Django's lazy-aware escape, one write per row) were most of a large report's time.
            json_parts, html_parts, csv_rows = [], [], []
            for row in batch:
                json_parts.append(("," if count else "") + "\n" + _json(row))
                cells = [cell(row[n]) for n in names]
                csv_rows.append(cells)
                tds = ["<td>" + (html_escape(c) if _unsafe(c) else c) + "</td>" for c in cells]
                html_parts.append("<tr>" + "".join(tds) + "</tr>")
                count += 1
            js.write("".join(json_parts))
            writer.writerows(csv_rows)
            html.write("".join(html_parts))
            progress(len(batch))
        js.write("\n]\n")
    if not count:
        html.write(f'<tr><td colspan="{len(names)}">Nothing held.</td></tr>')
    html.write("</tbody></table></section>")
    return [f"data/{section.key}.json", f"data/{section.key}.csv"]


def _report_head(request: PrivacyRequest) -> str:
    kind = escape(request.get_kind_display())
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{kind}: {escape(request.reference)}</title>"
        "<style>body{font:14px/1.4 sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #999;padding:2px 6px;text-align:left;vertical-align:top}"
        "@media print{section{page-break-inside:avoid}}</style></head><body>"
        f"<h1>{kind}</h1><p>Request {escape(request.reference)}, received {request.received_at:%d %B %Y}. "
        f"Covers {access_report.REPORT_SINCE:%d %B %Y} to {timezone.now():%d %B %Y}. Information we hold but "
        "do not show (passwords, second-factor secrets, payment tokens) is listed as held, not shown.</p>"
        "<p>You may ask us to correct or delete this information, object to or restrict its use, opt out of "
        "its sale or sharing, and complain to your data protection authority or the California Privacy "
        f"Protection Agency. Contact: {escape(settings.PRIVACY_OFFICER_NAME)}, "
        f"{escape(settings.PRIVACY_OFFICER_EMAIL)}.</p>"
    )


def export_build(*, job_id) -> ExportJob | None:
    job = _claim(job_id)
    if job is None:
        return None
    request = job.request
    try:
        sections = _sections(request)
        total = sum(s.count() for s in sections)
        ExportJob.objects.filter(pk=job.pk).update(rows_total=total)
        done = 0

        def progress(n):
            nonlocal done
            done += n
            ExportJob.objects.filter(pk=job.pk).update(rows_done=min(done, total), lease_until=timezone.now() + LEASE)

        target = export_dir() / f"{job.pk}.clpx"
        with tempfile.TemporaryDirectory(prefix="privacy-export-") as tmp:
            work = Path(tmp)
            (work / "data").mkdir()
            files = []
            with (work / "report.html").open("w", encoding="utf-8") as html:
                html.write(_report_head(request))
                for section in sections:
                    files += _write_section(section, work, html, progress)
                html.write("</body></html>")
            files.insert(0, "report.html")
            manifest = {
                "schema_version": SCHEMA_VERSION,
                "request": request.reference,
                "kind": request.kind,
                "files": {name: _sha256(work / name) for name in files},
            }
            (work / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
            zip_path = work / "export.zip"
            # Level 1: most of the size gain for a fraction of the time; the zip is encrypted whole anyway.
            with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
                for name in [*files, "manifest.json"]:
                    archive.write(work / name, arcname=name)
            partial = target.with_suffix(".partial")
            with zip_path.open("rb") as source, partial.open("wb") as sink:
                export_crypto.encrypt_stream(source, sink, scope=KeyScope("subject", str(request.pk)))
            partial.replace(target)
        return _finish(job.pk, target)
    except Exception as exc:
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, error=str(exc)[:300], lease_until=None
        )
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _finish(job_id, target: Path) -> ExportJob:
    with privacy_request_context(_request_of(job_id)):
        return _finish_in_context(job_id, target)


def _finish_in_context(job_id, target: Path) -> ExportJob:
    job = ExportJob.objects.select_for_update().select_related("request").get(pk=job_id)
    now = timezone.now()
    job.status, job.finished_at, job.lease_until = ExportJob.Status.READY, now, None
    job.expires_at = now + timedelta(days=settings.PRIVACY_EXPORT_TTL_DAYS)
    job.file_name, job.size, job.sha256 = target.name, target.stat().st_size, _sha256(target)
    job.rows_done = job.rows_total
    job.save()
    history_add(
        job.request, "note", note=f"Export ready ({job.rows_total} rows), link expires {job.expires_at:%Y-%m-%d}"
    )
    history_audit(job.request, "export_ready", Actor.system("privacy.exports"), rows=job.rows_total)
    request_email_send(request=job.request, template="export_ready", context={"job": job})
    return job


def export_chunks(*, job: ExportJob, actor: Actor):
    """The decrypted zip, streamed; refuses an expired or missing export. Every download is audited."""
    if job.status != ExportJob.Status.READY or job.expires_at is None or job.expires_at <= timezone.now():
        raise FileNotFoundError("This export has expired.")
    path = export_dir() / job.file_name
    with privacy_request_context(job.request_id):
        ExportJob.objects.filter(pk=job.pk).update(downloads=job.downloads + 1)
        history_audit(job.request, "export_downloaded", actor)
    handle = path.open("rb")

    def stream():
        with handle:
            yield from export_crypto.decrypt_stream(handle)

    return stream()


def export_purge_expired() -> int:
    """Delete expired export files and mark their jobs expired. Safe to run again."""
    purged = 0
    for job in ExportJob.objects.filter(status=ExportJob.Status.READY, expires_at__lte=timezone.now()):
        (export_dir() / job.file_name).unlink(missing_ok=True)
        ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.EXPIRED, file_name="")
        purged += 1
    return purged
