"""Bulk assign / unassign: from a CSV upload or a filtered selection, with no 20-user limit.

Two steps. The dry run (``bulk_preview_*``) decides per row what would change, what is
invalid and why, and how many seats are needed; nothing is sent to Microsoft. Confirming
(``bulk_job_confirm``) re-checks the rows, reserves every seat at once under the seat-pool
lock (all or nothing: never a half-done oversubscription) and queues the Graph calls in
batches of 20; progress is read from the assignments themselves.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from core.crypto import blind_index
from core.field_locks import RESTRICTED_MESSAGE, restricted_object_ids
from core.fields import encrypted_bulk_insert
from licensing.models import BulkJob, BulkJobRow, DirectoryUser, LicenseAssignment, TenantSku
from licensing.models.directory import MAIL_INDEX, UPN_INDEX
from licensing.selectors.usage import seats_free

from .assignments import SeatsExhausted, _queue, lock_seat_pools, validate_disabled_plans

MAX_ROWS = 50_000
LOOKUP_CHUNK = 1000
IDENTIFIER = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Words that make a first row a header (letters only, lower case): "User principal name" from the Microsoft
# 365 admin center's export, "UserPrincipalName" from PowerShell, "E-mail address", "Sign-in name", ...
HEADER_WORDS = ("principal", "upn", "mail", "user", "login", "logon", "signin", "account", "name", "identity")
State = LicenseAssignment.State
Outcome = BulkJobRow.Outcome
# What a preview row inserts, read off the instance _decide built (plaintext identifier included); its
# timestamps are the insert's own.
_ROW_ATTNAMES = [
    field.attname for field in BulkJobRow._meta.concrete_fields
    if not (getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))
]


class BulkInputError(Exception):
    """The upload as a whole is unusable (not CSV, empty, too many rows)."""


def is_header(first_cell: str) -> bool:
    """A first cell that names the column rather than a user: no "@", and a header word in it."""
    letters = "".join(c for c in first_cell.lower() if c.isalnum())
    return "@" not in first_cell and bool(letters) and any(word in letters for word in HEADER_WORDS)


def _identifiers_from_csv(upload) -> Iterator[tuple[int, str]]:
    """(row number, identifier) from the first column, streamed; a header row is recognised and skipped."""
    stream = io.TextIOWrapper(upload, encoding="utf-8-sig", errors="strict", newline="")
    reader = csv.reader(stream)
    try:
        for line_number, row in enumerate(reader, start=1):
            value = (row[0] if row else "").strip()
            if line_number == 1 and is_header(value):
                continue
            if not value and not any(c.strip() for c in row):
                continue
            yield line_number, value
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BulkInputError("The file is not a readable UTF-8 CSV file.") from exc
    finally:
        stream.detach()


def bulk_preview_csv(
    *, organization, sku: TenantSku, action: str, upload, actor: Actor, created_by=None,
    disabled_plans: Sequence[str] = (),
) -> BulkJob:
    """Dry run of a CSV of UPNs or e-mail addresses (one per row, first column)."""
    return _preview(
        organization=organization, sku=sku, action=action, source=BulkJob.Source.CSV, actor=actor,
        created_by=created_by, disabled_plans=disabled_plans, rows=_identifiers_from_csv(upload),
    )


def bulk_preview_selection(
    *, organization, sku: TenantSku, action: str, users: Iterable[DirectoryUser], actor: Actor, created_by=None,
    disabled_plans: Sequence[str] = (), source: str = BulkJob.Source.SELECTION,
) -> BulkJob:
    """Dry run of a set of directory users (a filtered list, or the inactive users to reclaim)."""
    return _preview(
        organization=organization, sku=sku, action=action, source=source, actor=actor, created_by=created_by,
        disabled_plans=disabled_plans, rows=None, users=users,
    )


@transaction.atomic
def _preview(*, organization, sku, action, source, actor, created_by, disabled_plans, rows, users=None) -> BulkJob:
    if action not in BulkJob.Action.values:
        raise ValidationError({"action": "Choose assign or unassign."})
    sku = TenantSku.objects.for_org(organization).get(pk=sku.pk)
    plans = validate_disabled_plans(sku, disabled_plans) if action == BulkJob.Action.ASSIGN else []
    job = BulkJob(organization=organization, action=action, source=source, sku=sku, disabled_plans=plans,
                  created_by=created_by)
    job.full_clean()
    job.save()
    held = set(
        LicenseAssignment.objects.for_org(organization)
        .filter(sku=sku, state__in=LicenseAssignment.SEAT_HOLDING)
        .values_list("user_id", flat=True)
    )
    # GDPR Art. 18: a restricted person is not assigned (their data would go to Microsoft).
    restricted = restricted_object_ids(organization, DirectoryUser) if action == BulkJob.Action.ASSIGN else set()
    seen: set = set()
    buffer: list[BulkJobRow] = []
    counts = {Outcome.CHANGE: 0, Outcome.UNCHANGED: 0, Outcome.INVALID: 0}
    source_rows = rows if rows is not None else ((n, u) for n, u in enumerate(users, start=1))
    for chunk in _chunks(source_rows, LOOKUP_CHUNK):
        if rows is not None:
            resolved = _resolve(organization, [value for _, value in chunk])
            pairs = [(n, value, resolved.get(value.strip().casefold())) for n, value in chunk]
        else:
            pairs = [(n, u.user_principal_name, u) for n, u in chunk]
        for number, identifier, user in pairs:
            if number > MAX_ROWS + 1:
                raise BulkInputError(f"At most {MAX_ROWS:,} rows per file; split it and upload the parts.")
            row = _decide(job, number, identifier, user, action, held, seen, restricted)
            counts[row.outcome] += 1
            buffer.append(row)
        # One JSON parameter per chunk: bulk_create prepared every value through its field and sent a thousand
        # rows as ten thousand placeholders, which psycopg's client-side binding parsed again for each chunk.
        encrypted_bulk_insert(BulkJobRow, [{name: getattr(row, name) for name in _ROW_ATTNAMES} for row in buffer])
        buffer = []
    if not sum(counts.values()):
        raise BulkInputError("The file has no rows. Put one user principal name or e-mail address per row.")
    job.total_rows = sum(counts.values())
    job.change_rows = counts[Outcome.CHANGE]
    job.unchanged_rows = counts[Outcome.UNCHANGED]
    job.invalid_rows = counts[Outcome.INVALID]
    job.seats_needed = job.change_rows if action == BulkJob.Action.ASSIGN else 0
    job.seats_available = seats_free(organization, sku)
    job.save()
    audit_record(actor=actor, action="license.bulk_previewed", organization=organization, target=job,
                 metadata={"action": action, "rows": job.total_rows, "changes": job.change_rows,
                           "invalid": job.invalid_rows})
    return job


def _chunks(iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _resolve(organization, identifiers: list[str]) -> dict[str, DirectoryUser]:
    """Find users by UPN, then by mail, through the blind indexes: two queries per chunk."""
    wanted = {i.strip().casefold() for i in identifiers if i.strip()}
    by_upn = {blind_index(UPN_INDEX, i): i for i in wanted}
    found: dict[str, DirectoryUser] = {}
    for user in DirectoryUser.objects.for_org(organization).filter(upn_index__in=list(by_upn)):
        found[by_upn[user.upn_index]] = user
    missing = wanted - set(found)
    if missing:
        by_mail = {blind_index(MAIL_INDEX, i): i for i in missing}
        for user in DirectoryUser.objects.for_org(organization).filter(mail_index__in=list(by_mail)):
            found.setdefault(by_mail[user.mail_index], user)
    return found


def _decide(job: BulkJob, number: int, identifier: str, user, action: str, held: set, seen: set,
            restricted: set = frozenset()) -> BulkJobRow:
    row = BulkJobRow(organization_id=job.organization_id, job=job, row_number=number, identifier=identifier[:320],
                     user=user)

    def invalid(code: str, message: str) -> BulkJobRow:
        row.outcome, row.error_code, row.message = Outcome.INVALID, code, message
        row.user = user if code not in ("not_found", "bad_format", "empty") else None
        return row

    if not identifier:
        return invalid("empty", "Empty row: put a user principal name or e-mail address in the first column.")
    if not IDENTIFIER.match(identifier):
        return invalid("bad_format", "Not a user principal name or e-mail address.")
    if user is None:
        return invalid("not_found", "No such user in the directory. Check the spelling or sync the directory.")
    if user.pk in seen:
        return invalid("duplicate", "The same user appears earlier in the file.")
    seen.add(user.pk)
    if user.removed_at is not None:
        return invalid("user_removed", "The user was deleted in the tenant.")
    if action == BulkJob.Action.ASSIGN:
        if user.pk in held:
            row.outcome, row.message = Outcome.UNCHANGED, "Already has this license."
            return row
        if str(user.pk) in restricted:
            return invalid("restricted", RESTRICTED_MESSAGE)
        if not user.has_usage_location:
            return invalid("usage_location_missing",
                           "No usage location: set the user's country in Microsoft 365, sync, then retry.")
        row.outcome, row.message = Outcome.CHANGE, "Will be assigned the license."
        return row
    if user.pk not in held:
        row.outcome, row.message = Outcome.UNCHANGED, "Does not have this license."
        return row
    row.outcome, row.message = Outcome.CHANGE, "Will lose the license."
    return row


@transaction.atomic
def bulk_job_confirm(*, organization, job: BulkJob, actor: Actor, requested_by=None) -> BulkJob:
    """Run a previewed job. All seats are reserved in this transaction, or none (SeatsExhausted)."""
    job = BulkJob.objects.for_org(organization).select_for_update().get(pk=job.pk)
    if job.status != BulkJob.Status.PREVIEW:
        return job
    pool = lock_seat_pools(organization, [job.sku_id])[job.sku_id]
    user_ids = list(
        BulkJobRow.objects.for_org(organization)
        .filter(job=job, outcome=Outcome.CHANGE)
        .values_list("user_id", flat=True)
    )
    rows = LicenseAssignment.objects.for_org(organization).select_for_update().filter(sku=pool, user_id__in=user_ids)
    existing = {a.user_id: a for a in rows}
    now = timezone.now()
    if job.action == BulkJob.Action.ASSIGN:
        # Rows that became assigned since the preview are skipped, not double-counted.
        targets = [u for u in user_ids if not (u in existing and existing[u].holds_seat)]
        # Counted now, under the pool lock: the dry run's figure may predate a purchase or other assignments.
        free = seats_free(organization, pool)
        job.seats_available = free
        if len(targets) > free:
            job.save(update_fields=["seats_available", "updated_at"])
            raise SeatsExhausted(sku=pool, needed=len(targets), available=free)
        assignments = []
        for user_id in targets:
            assignment = existing.get(user_id) or LicenseAssignment(
                organization=organization, user_id=user_id, sku=pool
            )
            assignment.disabled_plans = list(job.disabled_plans)
            assignment.source = LicenseAssignment.Source.PORTAL
            assignments.append(assignment)
        _queue(organization, assignments, State.PENDING, actor, requested_by, bulk_job=job)
    else:
        assignments = [a for u, a in existing.items() if a.state == State.ASSIGNED]
        _queue(organization, assignments, State.REMOVING, actor, requested_by, bulk_job=job)
    job.status = BulkJob.Status.RUNNING if assignments else BulkJob.Status.COMPLETED
    job.confirmed_at = now
    job.finished_at = None if assignments else now
    job.save()
    audit_record(actor=actor, action="license.bulk_confirmed", organization=organization, target=job,
                 metadata={"action": job.action, "users": len(assignments), "sku": str(pool.sku_id)})
    return job


@transaction.atomic
def bulk_job_cancel(*, organization, job: BulkJob, actor: Actor) -> BulkJob:
    """Discard a preview. A running job cannot be cancelled: its calls are already with Microsoft."""
    job = BulkJob.objects.for_org(organization).select_for_update().get(pk=job.pk)
    if job.status != BulkJob.Status.PREVIEW:
        return job
    job.status = BulkJob.Status.CANCELLED
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "finished_at", "updated_at"])
    audit_record(actor=actor, action="license.bulk_cancelled", organization=organization, target=job)
    return job
