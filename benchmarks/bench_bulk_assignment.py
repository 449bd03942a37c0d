"""Bulk assignment of 10,000 users end to end, against the emulator's raw assignLicense throughput.

The scene: the emulator (a subprocess) has the Fabrikam tenant grown past 10,000 users and two
10,000-seat subscriptions. The portal links an organisation, syncs the directory, previews a bulk
job from a filtered selection (users with a usage location), confirms it, and the outbox operations
run inline on commit (eager Celery, as in the tests): 100 users per operation, sent as $batch calls of 20,
each operation with its claim, attempt, results and audit rows. The figure is that wall time (preview + confirm +
every operation), as users/s.

The baseline (``_raw_batches``) is the same Graph work done the same way by the bare client, in the same
run: the same SKU and users, ``OPERATION_SIZE`` requests per ``Graph.batch`` call, $batch of 20 with
``BATCH_IN_FLIGHT`` in flight, one call after another, and then taken back (untimed) so the portal's job
assigns into the same tenant state. It stores nothing: no operations, assignments, audit or disclosure log.
"""

from __future__ import annotations

import time
import uuid

from benchmarks.emulator import (
    FABRIKAM,
    buy,
    emulator_process,
    linked_organization,
    portal_pointed_at,
    quiet_logs,
    scaled,
    sync_directory,
    worker_heap,
)
from benchmarks.harness import Context, Result

USERS = 10_000
SPE_E3 = ("CFQ7TTC0LFLX", "05e9a617-0261-4cee-bb44-138d3ef5d965")  # the bulk job and its raw baseline


def _raw_batches(tenant_id: str, sku_id: str, graph_ids: list[str], *, remove: bool = False) -> float:
    """The Graph work of the portal's job done the same way by the bare client, storing nothing.

    The same shape as the outbox operations: ``OPERATION_SIZE`` assignLicense requests per call of
    ``Graph.batch``, split into $batch calls of 20 with ``BATCH_IN_FLIGHT`` of them in flight, one call
    after the other, through the same client (token cache warm, connection pool, retries). Left out is
    what only the portal does: its database (operations, assignments, progress, audit, disclosure log).
    """
    from licensing.microsoft.client import default_client
    from licensing.services.assignments import OPERATION_SIZE
    from licensing.services.directory.graph import BATCH_IN_FLIGHT

    client = default_client()
    if remove:
        body = {"addLicenses": [], "removeLicenses": [sku_id]}
    else:
        body = {"addLicenses": [{"skuId": sku_id, "disabledPlans": []}], "removeLicenses": []}
    requests = [{"id": str(uuid.uuid4()), "method": "POST", "url": f"/users/{gid}/assignLicense",
                 "headers": {"Content-Type": "application/json"}, "body": body} for gid in graph_ids]
    client.graph.subscribed_skus(tenant_id=tenant_id)  # warm the token cache, as the portal's sync did
    start = time.perf_counter()
    results = []
    for index in range(0, len(requests), OPERATION_SIZE):
        results += client.graph.batch(tenant_id=tenant_id, requests=requests[index:index + OPERATION_SIZE],
                                      request_id=str(uuid.uuid4()), operation="users.assign_license_batch",
                                      in_flight=BATCH_IN_FLIGHT)
    elapsed = time.perf_counter() - start
    failed = [r for r in results if not r.ok]
    assert not failed, f"{len(failed)} raw assignments failed, e.g. {failed[0].error}"
    return elapsed


def run(ctx: Context) -> list[Result]:
    from core.audit import Actor
    from core.tenancy import tenant_context
    from licensing.models import BulkJob, DirectoryUser, LicenseAssignment, TenantSku
    from licensing.services import bulk as bulk_services
    from licensing.services.assignments import OPERATION_SIZE
    from licensing.services.directory.graph import BATCH_IN_FLIGHT

    count = min(scaled(USERS, minimum=100), USERS)  # 10,000 is the most seats one subscription allows
    actor = Actor.system("bench")
    with quiet_logs(), emulator_process() as emulator, portal_pointed_at(emulator), worker_heap():
        control = emulator.control()
        control.lift_sandbox_limits()
        control.without_throttling()
        # About 10 % of generated users have no usage location and cannot be licensed.
        control.add_users(FABRIKAM, int(count * 1.15))
        buy(control, FABRIKAM, SPE_E3[0], count)

        organization = linked_organization("bench-bulk")
        started = time.perf_counter()
        sync = sync_directory(organization)
        ctx.say(f"directory sync of {sync.users_seen:,} users: {time.perf_counter() - started:.1f} s")
        with tenant_context(organization):
            pool = TenantSku.objects.for_org(organization).get(sku_id=SPE_E3[1])
            assert pool.purchased >= count, pool.purchased
            eligible = (
                DirectoryUser.objects.for_org(organization)
                .filter(has_usage_location=True, removed_at__isnull=True)
                .order_by("created_at", "id")
            )
            graph_ids = [str(u.graph_id) for u in eligible.only("organization_id", "graph_id")[:count]]
        assert len(graph_ids) == count, f"only {len(graph_ids)} users with a usage location"

        # The emulator's cost per assignment grows with the licenses the tenant holds: the baseline's are
        # taken back (untimed) so that the portal's job starts from the tenant state the baseline had.
        baseline = _raw_batches(FABRIKAM, SPE_E3[1], graph_ids)
        undo = _raw_batches(FABRIKAM, SPE_E3[1], graph_ids, remove=True)
        ctx.say(f"raw client, the job's calls (batches of {OPERATION_SIZE}, $batch of 20, {BATCH_IN_FLIGHT} in"
                f" flight): {count:,} assignLicense in {baseline:.1f} s ({count / baseline:,.0f} users/s);"
                f" taken back in {undo:.1f} s")

        started = time.perf_counter()
        with tenant_context(organization):
            selection = list(eligible[:count])
            job = bulk_services.bulk_preview_selection(
                organization=organization, sku=pool, action=BulkJob.Action.ASSIGN, users=selection, actor=actor
            )
        previewed = time.perf_counter() - started
        with tenant_context(organization):
            bulk_services.bulk_job_confirm(organization=organization, job=job, actor=actor)
        figure = time.perf_counter() - started
        with tenant_context(organization):
            job = BulkJob.objects.for_org(organization).get(pk=job.pk)
            assigned = LicenseAssignment.objects.for_org(organization).filter(
                bulk_job=job, state=LicenseAssignment.State.ASSIGNED
            ).count()
        assert job.status == BulkJob.Status.COMPLETED, (job.status, job.succeeded, job.failed)
        assert assigned == job.succeeded == count, (assigned, job.succeeded)
        operations = -(-count // OPERATION_SIZE)
        ctx.say(f"portal bulk job: {count:,} users in {figure:.1f} s ({count / figure:,.0f} users/s;"
                f" preview {previewed:.1f} s, confirm + {operations} outbox operations {figure - previewed:.1f} s)")
    return [
        # Goal (issue 12): at least 0.6x the raw client's throughput, i.e. at most 1/0.6 times slower.
        Result(f"bulk assign {count:,} users (users/s)", count / figure, count / baseline, "users/s",
               higher_is_better=True, goal=1 / 0.6,
               note="preview + confirm + outbox operations inline (eager Celery); baseline: the same Graph work"
                    " the same way through the bare client (operations of 100, $batch of 20, 4 in flight, same"
                    " tenant state), without the portal's database work"),
    ]
