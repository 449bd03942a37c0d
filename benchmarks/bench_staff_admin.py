"""The cost of staff grants per admin request: the provisioning-operations changelist with the grant
check (grants read fresh, queryset scoped, view in the tenant context) and the audit write (one
chained event per organisation shown, its checkpoint after commit), against the same admin page
without them (benchmarks/staff_admin_site.py), same rows, same signed-in staff member, same run.
Goal: at most 1.2x (issue 10). Rendering a 100-row changelist dominates both pages and swings with the
machine's load, so the two are measured request by request in alternation, and each figure is the
median of the rounds' medians."""

from __future__ import annotations

import statistics
import time

from django.test import Client

from benchmarks.emulator import worker_heap
from benchmarks.harness import Context, Result

ROUNDS = 7
PAIRS = 12  # per round: one request to each page, alternating which goes first
ROWS = 100


def _request_ms(client: Client, path: str) -> tuple[float, float]:
    """Wall-clock and this process's CPU time of one request, in milliseconds."""
    start, cpu = time.perf_counter(), time.process_time()
    response = client.get(path)
    elapsed, cpu_ms = (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000
    assert response.status_code == 200, (path, response.status_code)
    return elapsed, cpu_ms


def _round(client: Client, granted_path: str, bare_path: str) -> dict[str, tuple[float, float]]:
    """Each page's median request time (wall, CPU) over one round. The two pages alternate request by
    request, so load from other processes on a shared machine falls on both alike, and the median ignores
    the odd request that met a garbage collection or a descheduling."""
    granted, bare = [], []
    for pair in range(PAIRS):
        order = [(granted, granted_path), (bare, bare_path)]
        for timings, path in order if pair % 2 else reversed(order):
            timings.append(_request_ms(client, path))
    return {
        "granted": tuple(statistics.median(t[i] for t in granted) for i in (0, 1)),
        "bare": tuple(statistics.median(t[i] for t in bare) for i in (0, 1)),
    }


def _median(rounds, page: str, measure: int) -> float:
    return statistics.median(r[page][measure] for r in rounds)


def run(ctx: Context) -> list[Result]:
    from accounts.models import StaffRole
    from accounts.tests.factories import OrganizationFactory, StaffGrantFactory, UserFactory
    from accounts.tests.helpers import verified_client
    from benchmarks.staff_admin_site import BENCH_ORGANIZATION
    from core.models import AuditEvent
    from licensing.models import ProvisioningOperation

    org = OrganizationFactory(slug=BENCH_ORGANIZATION)
    ProvisioningOperation.unscoped_objects.bulk_create(
        [ProvisioningOperation(organization=org, kind="order.checkout") for _ in range(ROWS)]
    )
    staff = UserFactory(is_staff=True, is_superuser=True)
    grant = StaffGrantFactory(staff=staff, organization=org, roles=[StaffRole.LICENSE_OPERATOR])
    client = verified_client(Client(), staff)
    granted_path = "/admin/licensing/provisioningoperation/"
    bare_path = "/bench/admin/licensing/provisioningoperation/"
    for path in (bare_path, granted_path):  # both pages list the same rows (and are warmed up)
        assert f"{ROWS} provisioning operations" in client.get(path).content.decode(), path

    before = AuditEvent.unscoped_objects.filter(action="staff.viewed_list").count()
    with worker_heap():  # as a web worker serves both pages (gunicorn.conf.py)
        rounds = [_round(client, granted_path, bare_path) for _ in range(ROUNDS)]
    written = AuditEvent.unscoped_objects.filter(action="staff.viewed_list").count() - before
    granted_requests = ROUNDS * PAIRS
    assert written == granted_requests, (written, granted_requests)  # one per granted page, none for the baseline
    ratios = sorted(r["granted"][0] / r["bare"][0] for r in rounds)
    ctx.say(f"{written} audit events written by {granted_requests} granted requests (grant {grant.pk})")
    ctx.say(f"per-round wall-clock ratios over {ROUNDS} rounds: {', '.join(f'{r:.2f}' for r in ratios)}")
    return [
        Result(
            name=f"staff admin changelist ({ROWS} rows) with grant check + audit",
            figure=_median(rounds, "granted", 0),
            baseline=_median(rounds, "bare", 0),
            unit="ms/request",
            goal=1.2,
            note="baseline: the same admin page without grants or audit, reading every organisation (pre-grant "
            f"admin); median of {ROUNDS} rounds of {PAIRS} interleaved requests each",
        ),
        Result(
            name="  the same, CPU time of the web process",
            figure=_median(rounds, "granted", 1),
            baseline=_median(rounds, "bare", 1),
            unit="ms/request",
            note="steadier than wall-clock time on a loaded machine, but leaves out the database's share",
        ),
    ]
