"""Bulk assignment: CSV dry run with bad rows, all-or-nothing seat reservation, faults during the run."""

from __future__ import annotations

import pytest

from core.models import AuditEvent
from core.tenancy import tenant_context
from licensing.models import BulkJob, BulkJobRow, LicenseAssignment
from licensing.services import bulk as bulk_services
from licensing.services.assignments import SeatsExhausted, seats_free
from licensing.services.bulk import BulkInputError

from . import directory_helpers
from .directory_helpers import SYSTEM, csv_upload, premium, run_sync
from .test_assignments import unlicensed_users

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True)]

# Fixtures shared by the directory tests (bound here so pytest finds them).
graph = directory_helpers.graph
linked_org = directory_helpers.linked_org


def preview(organization, pool, lines, action=BulkJob.Action.ASSIGN):
    with tenant_context(organization):
        return bulk_services.bulk_preview_csv(
            organization=organization, sku=pool, action=action, upload=csv_upload(lines), actor=SYSTEM
        )


def confirm(organization, job):
    with tenant_context(organization):
        bulk_services.bulk_job_confirm(organization=organization, job=job, actor=SYSTEM)
    with tenant_context(organization):
        return BulkJob.objects.for_org(organization).get(pk=job.pk)


def bad_and_good_rows(organization, pool):
    good = unlicensed_users(organization, pool, count=5)
    no_location = unlicensed_users(organization, pool, with_location=False, count=1)[0]
    with tenant_context(organization):
        licensed = LicenseAssignment.objects.for_org(organization).filter(sku=pool, state="assigned").first().user
        lines = ["userPrincipalName"] + [u.user_principal_name for u in good] + [
            good[0].user_principal_name.upper(),  # duplicate, different case
            "nobody@fabrikamdemo.onmicrosoft.com",
            "not an address",
            no_location.user_principal_name,
            licensed.user_principal_name,
            "",
        ]
    return good, lines


def test_dry_run_explains_every_row_and_counts_seats(linked_org):
    run_sync(linked_org)
    pool = premium(linked_org)
    _good, lines = bad_and_good_rows(linked_org, pool)
    job = preview(linked_org, pool, lines)
    assert (job.total_rows, job.change_rows, job.unchanged_rows, job.invalid_rows) == (10, 5, 1, 4)
    assert job.seats_needed == 5 and job.seats_available == 5 and job.seats_short == 0
    with tenant_context(linked_org):
        codes = dict(BulkJobRow.objects.for_org(linked_org).filter(job=job).values_list("row_number", "error_code"))
        # Nothing was sent or reserved by the dry run.
        assert seats_free(linked_org, pool) == 5
    assert codes[7] == "duplicate"
    assert codes[8] == "not_found"
    assert codes[9] == "bad_format"
    assert codes[10] == "usage_location_missing"
    assert 12 not in codes  # blank lines are ignored, not reported
    with tenant_context(linked_org):
        rows = {row.row_number: row for row in BulkJobRow.objects.for_org(linked_org).filter(job=job)}
        stored = dict(BulkJobRow.objects.for_org(linked_org).filter(job=job).values_list("row_number", "identifier"))
    # What each row said is shown back as typed, and stored encrypted (bound to its row).
    assert (rows[8].identifier, rows[9].identifier) == ("nobody@fabrikamdemo.onmicrosoft.com", "not an address")
    assert rows[8].user_id is None and rows[10].user_id is not None
    assert stored[8].startswith("v1:") and "nobody" not in stored[8]


def test_confirm_assigns_every_valid_row_with_progress(linked_org, emulator):
    run_sync(linked_org)
    pool = premium(linked_org)
    _good, lines = bad_and_good_rows(linked_org, pool)
    emulator.clear_requests_log()
    job = confirm(linked_org, preview(linked_org, pool, lines))
    assert job.status == BulkJob.Status.COMPLETED
    assert (job.succeeded, job.failed) == (5, 0)
    batches = emulator.requests_log(method="POST", path="/graph/v1.0/$batch")
    assert len(batches) == 1


def test_confirm_reserves_all_seats_or_none(linked_org):
    run_sync(linked_org)
    pool = premium(linked_org)
    _good, lines = bad_and_good_rows(linked_org, pool)
    job = preview(linked_org, pool, lines)
    with tenant_context(linked_org):
        from licensing.services.assignments import license_assign

        license_assign(organization=linked_org, user=unlicensed_users(linked_org, pool, count=6)[5], sku=pool,
                       actor=SYSTEM)
    with pytest.raises(SeatsExhausted) as exhausted:
        confirm(linked_org, job)
    assert exhausted.value.short == 1
    with tenant_context(linked_org):
        assert LicenseAssignment.objects.for_org(linked_org).filter(bulk_job=job).count() == 0
        assert BulkJob.objects.for_org(linked_org).get(pk=job.pk).status == BulkJob.Status.PREVIEW


def test_unreadable_or_empty_files_are_refused(linked_org):
    run_sync(linked_org)
    pool = premium(linked_org)
    with pytest.raises(BulkInputError):
        preview(linked_org, pool, ["userPrincipalName"])
    with tenant_context(linked_org), pytest.raises(BulkInputError):
        bulk_services.bulk_preview_csv(organization=linked_org, sku=pool, action="assign",
                                       upload=__import__("io").BytesIO(b"\xff\xfe\x00bad"), actor=SYSTEM)


def test_throttling_and_failures_during_a_bulk_run_still_finish_exactly_once(linked_org, emulator, graph):
    run_sync(linked_org)
    pool = premium(linked_org)
    _good, lines = bad_and_good_rows(linked_org, pool)
    job = preview(linked_org, pool, lines)
    # More 429s than the client's own retry budget: the outbox must retry the operation itself.
    emulator.fault("/graph/v1.0/users/*/assignLicense", method="POST", kind="status", status=429, retryAfter=1,
                   times=33)
    emulator.fault("/graph/v1.0/$batch", method="POST", kind="status", status=503, times=2)
    emulator.clear_requests_log()
    job = confirm(linked_org, job)
    assert job.status == BulkJob.Status.COMPLETED, job.status
    assert job.succeeded == 5
    succeeded = [r for r in emulator.requests_log(path="/graph/v1.0/users/*/assignLicense") if r["status"] == 200]
    assert len(succeeded) == 5
    skus = {s.sku_id: s for s in graph.graph.subscribed_skus(tenant_id="3f2c7b1e-8d4a-4c6e-9b0f-1a2d3e4f5a6b")}
    assert skus[str(pool.sku_id)].consumed == 25
    with tenant_context(linked_org):
        assert seats_free(linked_org, pool) == 0


@pytest.mark.parametrize("header", [
    "User principal name", "userPrincipalName", "UPN", "E-mail address", "Email", "Sign-in name", "Username",
    "\ufeffUser principal name,Display name,Department",
])
def test_an_optional_header_row_is_recognised_not_counted(header):
    rows = list(bulk_services._identifiers_from_csv(csv_upload([header, "adele@x.example", "alex@x.example"])))
    assert [value for _, value in rows] == ["adele@x.example", "alex@x.example"]
    # Without a header, the first row is a user like any other.
    plain = list(bulk_services._identifiers_from_csv(csv_upload(["adele@x.example", "alex@x.example"])))
    assert [value for _, value in plain] == ["adele@x.example", "alex@x.example"]
    # A first row that is neither a header nor an address stays, to be reported invalid.
    odd = list(bulk_services._identifiers_from_csv(csv_upload(["12345", "alex@x.example"])))
    assert [value for _, value in odd] == ["12345", "alex@x.example"]


def test_a_row_that_fails_for_good_completes_the_job_with_errors_and_counts_it(linked_org, emulator):
    run_sync(linked_org)
    pool = premium(linked_org)
    _good, lines = bad_and_good_rows(linked_org, pool)
    job = preview(linked_org, pool, lines)
    emulator.fault("/graph/v1.0/users/*/assignLicense", method="POST", kind="status", status=400, times=1)
    job = confirm(linked_org, job)
    assert job.status == BulkJob.Status.COMPLETED_WITH_ERRORS, job.status
    assert (job.succeeded, job.failed) == (4, 1)
    assert job.finished_at is not None
    with tenant_context(linked_org):
        assert seats_free(linked_org, pool) == 1
        completed = AuditEvent.objects.filter(action="license.bulk_completed", target_id=str(job.pk)).get()
    assert (completed.actor_type, completed.actor_id) == ("system", "provisioning")
    assert completed.metadata == {"status": "completed_with_errors", "succeeded": 4, "failed": 1}
