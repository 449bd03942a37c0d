"""Authorisation documents: an authorised agent's written proof that they may act for the person a
request is about (CCPA's authorised agent, GDPR's representative). The agent attaches it to the public
request form, or sends it to the officer, who files it; either way the officer records checking it
before the request can be approved (docs/decisions/031-agents-upload-their-authorisation.md).

Checked before anything is kept: at most :data:`MAX_BYTES`, and a PDF, PNG or JPEG by its first bytes
(the browser's content type and the file name are not trusted). Encrypted at rest in 1 MiB AES-GCM
chunks (``privacy.export_crypto``) under the request's own key, so minimising the request record
(destroying that key) makes the document unreadable too.

Not scanned for malware: this deployment has no scanner. What keeps a hostile file harmless instead:
only these three types are accepted, the officer's download is always an attachment with
``X-Content-Type-Options: nosniff`` (never rendered by the portal), and officers open documents in
their workstation's viewer. A deployment with a scanner (ClamAV's clamd) adds the call in
:func:`authorization_document_store` before the file is written.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from core.audit import Actor
from core.crypto import KeyScope
from core.tenancy import row_security_hides, unscoped_no_tenant
from privacy import export_crypto
from privacy.models import AuthorizationDocument, PrivacyRequest
from privacy.services.history import history_audit

MAX_BYTES = 5 * 1024 * 1024
SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
TOO_LARGE = f"The document must be at most {MAX_BYTES // (1024 * 1024)} MB."
ORPHAN_GRACE = timedelta(hours=1)


def _directory() -> Path:
    path = Path(settings.PRIVACY_EXPORT_DIR) / "authorizations"
    path.mkdir(parents=True, exist_ok=True)
    return path


def document_path(document: AuthorizationDocument) -> Path:
    return _directory() / f"{document.pk}.bin"


def sniff(head: bytes) -> str | None:
    return next((kind for magic, kind in SIGNATURES if head.startswith(magic)), None)


def authorization_document_check(upload) -> tuple[bytes, str]:
    """The upload's bytes and content type, or a ValidationError on ``document`` saying what is wrong.

    Forms call it too, so that a refused file fails before anything else is counted or written
    (the public form's per-address limit counts only valid submissions); the upload is rewound.
    """
    size = getattr(upload, "size", None)
    if size is None or size > MAX_BYTES:
        raise ValidationError({"document": TOO_LARGE})
    if size == 0:
        raise ValidationError({"document": "The document is empty."})
    upload.seek(0)
    data = upload.read(MAX_BYTES + 1)
    upload.seek(0)
    if len(data) > MAX_BYTES:
        raise ValidationError({"document": TOO_LARGE})
    kind = sniff(data[:16])
    if kind is None:
        raise ValidationError({"document": "Upload a PDF, PNG or JPEG file."})
    return data, kind


def authorization_document_store(*, request: PrivacyRequest, upload, actor,
                                 source: str = AuthorizationDocument.Source.OFFICER) -> AuthorizationDocument:
    """Check, encrypt and keep one uploaded file, inside the caller's transaction.

    ``actor`` is the officer who filed it, or None for an agent's upload with the public form.
    The file is written before its row; if the row does not commit, the caller removes the file
    (:func:`authorization_document_discard`), so no document outlives the record that names it.
    """
    data, kind = authorization_document_check(upload)
    document = AuthorizationDocument(
        request=request, file_name=(getattr(upload, "name", "") or "authorisation")[:255], content_type=kind,
        size=len(data), sha256=hashlib.sha256(data).hexdigest(), uploaded_by=actor, source=source,
    )
    # The person is an instance in hand, whose row row-level security may not show here (decision 043).
    document.full_clean(exclude=["uploaded_by"])
    target = document_path(document)
    partial = target.with_suffix(".partial")
    with partial.open("wb") as sink:
        export_crypto.encrypt_stream(io.BytesIO(data), sink, scope=KeyScope("subject", str(request.pk)))
    partial.replace(target)
    document.save()
    return document


def authorization_document_discard(document: AuthorizationDocument | None) -> None:
    if document is not None:
        document_path(document).unlink(missing_ok=True)


def authorization_files_purge_orphans(*, now: datetime) -> int:
    """Delete document files whose row is gone: the request record was purged (its documents went
    with it), or the upload's transaction never committed. A file younger than :data:`ORPHAN_GRACE` is
    left alone, since its row may still be committing."""
    directory = Path(settings.PRIVACY_EXPORT_DIR) / "authorizations"
    if not directory.is_dir():
        return 0
    # Every request's documents, as the system role (decision 048). A role that row-level security binds would see
    # none and take every file for an orphan: then nothing is deleted.
    with unscoped_no_tenant():
        if row_security_hides(AuthorizationDocument):
            return 0
        kept = {str(pk) for pk in AuthorizationDocument.objects.values_list("pk", flat=True)}
    cutoff = (now - ORPHAN_GRACE).timestamp()
    purged = 0
    for path in directory.iterdir():  # <id>.bin, or <id>.partial left by a worker that died writing it
        if path.suffix in (".bin", ".partial") and path.stem not in kept and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            purged += 1
    return purged


def authorization_document_chunks(document: AuthorizationDocument) -> Iterator[bytes]:
    """The decrypted file, streamed."""
    handle = document_path(document).open("rb")

    def stream():
        with handle:
            yield from export_crypto.decrypt_stream(handle)

    return stream()


def authorization_document_downloaded(*, document: AuthorizationDocument, actor) -> None:
    """Who took a copy of the document out of the portal, and when."""
    history_audit(document.request, "authorization_downloaded", Actor.staff(actor), document=str(document.pk))
