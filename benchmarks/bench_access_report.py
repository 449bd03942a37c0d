"""An access report for a person with 200,000 sign-in events: time, and peak memory flat in the event count.

The scene: one portal user with N sign-in events (bulk-inserted), an approved access request, and the
export task's body (``export_build``) run inline: registry sections read in keyset batches, written to
HTML, JSON and CSV, zipped with a manifest and encrypted at rest.

Figures:
- time for 200,000 events, against the baseline of reading the same rows and writing them as JSON lines
  to a file (no report, no zip, no encryption), in the same run;
- peak Python memory (tracemalloc) for 200,000 events against the peak for 20,000: a streamed report's
  ratio stays near 1 (goal 1.5), where a report built in memory would grow tenfold.
"""

from __future__ import annotations

import datetime
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

from benchmarks.harness import Context, Result

BIG, SMALL = 200_000, 20_000


def _subject(n_events: int, tag: str):
    from accounts.models import Membership, Organization, SignInEvent, User

    user = User.objects.create_user(email=f"bench-report-{tag}@example.com", password=None, full_name="Bench Subject")
    org = Organization.objects.create(slug=f"bench-report-{tag}", legal_name="Bench", country="US")
    Membership.objects.create(user=user, organization=org, role="owner")
    start = datetime.datetime(2022, 1, 2, tzinfo=datetime.UTC)
    batch = []
    for i in range(n_events):
        batch.append(
            SignInEvent(
                user=user,
                occurred_at=start + datetime.timedelta(minutes=7 * i),
                succeeded=True,
                factor="totp",
                ip_address=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            )
        )
        if len(batch) == 5000:
            SignInEvent.objects.bulk_create(batch)
            batch = []
    SignInEvent.objects.bulk_create(batch)
    return user


def _approved_request(user):
    from privacy.models import ExportJob, PrivacyRequest
    from privacy.services.requests import request_submit_portal

    request = request_submit_portal(user=user, kind="access", region="eu_uk", recent_mfa=True)
    PrivacyRequest.objects.filter(pk=request.pk).update(status=PrivacyRequest.Status.APPROVED)
    return ExportJob.objects.create(request=request)


def _build(user, *, trace: bool) -> tuple[float, int]:
    from privacy.services.exports import export_build

    job = _approved_request(user)
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    built = export_build(job_id=job.pk)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    assert built is not None and built.status == "ready" and built.rows_total > BIG // 10
    return elapsed, peak


def _baseline(user) -> float:
    from accounts.models import SignInEvent

    with tempfile.TemporaryDirectory() as tmp, (Path(tmp) / "rows.jsonl").open("w") as out:
        start = time.perf_counter()
        rows = SignInEvent.objects.filter(user=user).values("id", "occurred_at", "ip_address", "user_agent", "factor")
        for row in rows.iterator(chunk_size=2000):
            out.write(json.dumps(row, default=str) + "\n")
        return time.perf_counter() - start


def run(ctx: Context) -> list[Result]:
    from django.conf import settings

    with tempfile.TemporaryDirectory() as exports:
        settings.PRIVACY_EXPORT_DIR = exports
        big = _subject(BIG, "big")
        small = _subject(SMALL, "small")
        baseline = _baseline(big)
        elapsed, _ = _build(big, trace=False)
        _, peak_small = _build(small, trace=True)
        _, peak_big = _build(big, trace=True)
    ctx.say(
        f"{BIG:,} events: report {elapsed:.1f} s vs raw JSON lines {baseline:.1f} s; "
        f"peak Python memory {peak_small / 2**20:.1f} MiB at {SMALL:,} events, {peak_big / 2**20:.1f} MiB at {BIG:,}"
    )
    return [
        Result(
            f"access report, {BIG:,} sign-in events",
            elapsed,
            baseline,
            "s",
            note="export_build (HTML+JSON+CSV, zip, AES-GCM) vs reading the rows into JSON lines; goal < 30 s",
        ),
        Result(
            f"access report peak memory, {BIG:,} vs {SMALL:,} events",
            peak_big / 2**20,
            peak_small / 2**20,
            "MiB",
            goal=1.5,
            note="tracemalloc peak; flat when streamed",
        ),
    ]
