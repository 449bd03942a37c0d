"""The 10,000-user bulk assignment under Microsoft's modelled throttling, as production would run it.

The emulator (a subprocess) throttles as Graph documents (msemulator/throttling.py, on by default):
3,000 writes per application and tenant every 2 min 30 s, each assignLicense inside a $batch charged
on its own. The portal previews and confirms a 10,000-user job; the outbox operations run inline
(eager Celery) through the portal's own client, which waits each Retry-After. So that `make bench`
does not sit through minutes of waiting, the client's sleep moves the emulator's clock by the
requested delay instead of sleeping: the windows slide exactly as they would, and the duration is
the wall time spent working plus the time waited.

The figure is that duration; the baseline is the least time the write quota allows for the same
number of writes, (ceil(N / 3,000) - 1) x 150 s. The run reports the number of 429 answers and checks
that every user was assigned once and no operation failed.
"""

from __future__ import annotations

import math
import time

from benchmarks.bench_bulk_assignment import SPE_E3, USERS
from benchmarks.emulator import (
    FABRIKAM,
    buy,
    emulator_process,
    linked_organization,
    portal_pointed_at,
    quiet_logs,
    scaled,
    sync_directory,
)
from benchmarks.harness import Context, Result


class EmulatorClockSleep:
    """The client's sleep: move the emulator clock by the delay and count it, instead of waiting."""

    def __init__(self, control):
        self.control = control
        self.waited = 0.0
        self.waits = 0

    def __call__(self, seconds: float) -> None:
        if seconds > 0:
            self.control.post("/clock", {"seconds": seconds}, timeout=60)
            self.waited += seconds
            self.waits += 1


def run(ctx: Context) -> list[Result]:
    import licensing.microsoft.client as client_module
    from core.audit import Actor
    from core.tenancy import tenant_context
    from licensing.microsoft.client import MicrosoftClient
    from licensing.models import BulkJob, DirectoryUser, LicenseAssignment, TenantSku
    from licensing.services import bulk as bulk_services

    count = min(scaled(USERS, minimum=100), USERS)
    actor = Actor.system("bench")
    with quiet_logs(), emulator_process() as emulator, portal_pointed_at(emulator):
        control = emulator.control()
        control.lift_sandbox_limits()
        limits = control.http.get(f"{emulator.base_url}/_emulator/throttling", timeout=30).json()
        writes, window = limits["graph"]["writes"], limits["graph"]["writeWindowSeconds"]
        assert limits["enabled"], "the emulator's modelled throttling should be on by default"
        control.add_users(FABRIKAM, int(count * 1.15))  # about 10 % have no usage location
        buy(control, FABRIKAM, SPE_E3[0], count)
        sleep = EmulatorClockSleep(control)
        client_module._default = MicrosoftClient.for_settings(sleep=sleep)

        organization = linked_organization("bench-bulk-throttled")
        sync_directory(organization)
        with tenant_context(organization):
            pool = TenantSku.objects.for_org(organization).get(sku_id=SPE_E3[1])
            selection = list(
                DirectoryUser.objects.for_org(organization)
                .filter(has_usage_location=True, removed_at__isnull=True)
                .order_by("created_at", "id")[:count]
            )
        assert len(selection) == count, f"only {len(selection)} users with a usage location"
        before = sleep.waited
        started = time.perf_counter()
        with tenant_context(organization):
            job = bulk_services.bulk_preview_selection(
                organization=organization, sku=pool, action=BulkJob.Action.ASSIGN, users=selection, actor=actor
            )
        with tenant_context(organization):
            bulk_services.bulk_job_confirm(organization=organization, job=job, actor=actor)
        worked = time.perf_counter() - started
        waited = sleep.waited - before
        with tenant_context(organization):
            job = BulkJob.objects.for_org(organization).get(pk=job.pk)
            assigned = LicenseAssignment.objects.for_org(organization).filter(
                bulk_job=job, state=LicenseAssignment.State.ASSIGNED
            ).count()
        throttled = control.http.get(f"{emulator.base_url}/_emulator/throttling", timeout=30).json()["throttled"]
        assert job.status == BulkJob.Status.COMPLETED, (job.status, job.succeeded, job.failed)
        assert (assigned, job.succeeded, job.failed) == (count, count, 0), (assigned, job.succeeded, job.failed)

    duration = worked + waited
    floor = (math.ceil(count / writes) - 1) * window
    answered_429 = throttled.get("graph", 0)
    ctx.say(f"{count:,} users under the modelled limits ({writes:,.0f} writes / {window:.0f} s per app and tenant):"
            f" {duration:,.0f} s ({worked:,.0f} s working, {waited:,.0f} s waiting in {sleep.waits} waits);"
            f" {answered_429:,} answers were 429; no failure, each user assigned once")
    return [
        Result(f"bulk assign {count:,} users under Graph throttling (s)", duration, max(floor, 1.0), "s",
               note=f"{answered_429:,} throttled answers (429) retried after Retry-After; baseline: the least time"
                    f" the write quota allows ({writes:,.0f} per {window:.0f} s), waits counted in emulator time"),
    ]
