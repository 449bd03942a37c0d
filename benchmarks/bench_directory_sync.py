"""Directory sync of 10,000 users against paging the same users from Graph, and its memory at 1,000 vs 10,000.

The emulator (a subprocess, so its memory is not counted) grows the Fabrikam tenant; each measured
sync is a first sync into a fresh organisation (every user created), run the way the task runs it.
Wall time is measured without tracemalloc; the peaks come from separate runs under tracemalloc,
with the encrypted fields' bounded id caches already full (see ``_fill_id_caches``).
The sync streams one Graph page (999 users) at a time, so the peak should not grow with the directory.
"""

from __future__ import annotations

import time
import tracemalloc
import uuid

from benchmarks.emulator import (
    FABRIKAM,
    emulator_process,
    linked_organization,
    portal_pointed_at,
    quiet_logs,
    scaled,
    sync_directory,
    worker_heap,
)
from benchmarks.harness import Context, Result

SMALL, LARGE = 1_000, 10_000
SEEDED = 300  # Fabrikam's users in a fresh emulator


GROW_CHUNK = 10_000  # the emulator's control API adds at most 50,000 users per call


def _grow_to(control, total: int, current: int) -> int:
    while current < total:
        current = control.add_users(FABRIKAM, min(GROW_CHUNK, total - current))
    return current


def _as_task(call, *args):
    """``call(*args)`` with room on the frame stack, as the sync task runs it (portal.celery.TenantTask)."""
    from core.frame_room import with_room

    return with_room(call, *args)


def _timed_sync(slug: str):
    organization = linked_organization(slug)
    started = time.perf_counter()
    sync = _as_task(sync_directory, organization)
    return organization, sync, time.perf_counter() - started


def _fill_id_caches() -> None:
    """Fill the encrypted fields' bounded id caches (4,096 entries each), as in a long-running worker.

    Otherwise the 10,000-user run pays for filling them and the 1,000-user run for a quarter of it,
    which reads as growth with the directory although the caches stop at their bound.
    """
    from core.fields import _id_text, _scope

    for _ in range(_id_text.cache_info().maxsize):
        _id_text(uuid.uuid4())
    for _ in range(_scope.cache_info().maxsize):
        _scope("organization", uuid.uuid4())


def _peak_sync(slug: str) -> tuple[int, int]:
    """(users seen, peak traced bytes) of a first sync under tracemalloc, caches in their steady state."""
    organization = linked_organization(slug)
    _fill_id_caches()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        sync = sync_directory(organization)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return sync.users_seen, peak


def _bare_paging(organization) -> tuple[int, float]:
    """Page through the directory with the sync's own Graph seam and field list, writing nothing."""
    from core.tenancy import tenant_context
    from licensing.services.directory import PAGE_SIZE, USER_SELECT, graph_for

    with tenant_context(organization):
        graph = graph_for(organization)
    started = time.perf_counter()
    seen = _as_task(lambda: sum(len(page) for page in graph.user_pages(select=USER_SELECT, page_size=PAGE_SIZE)))
    return seen, time.perf_counter() - started


def run(ctx: Context) -> list[Result]:
    small, large = SMALL, scaled(LARGE, minimum=2 * SMALL)  # the small run fills at least one Graph page
    with quiet_logs(), emulator_process() as emulator, portal_pointed_at(emulator), worker_heap():
        control = emulator.control()
        control.lift_sandbox_limits()
        control.without_throttling()
        sync_directory(linked_organization("bench-sync-warmup"))  # keys, caches, imports: not the sync's cost
        total = _grow_to(control, small, SEEDED)
        _, small_sync, small_time = _timed_sync("bench-sync-small")
        small_seen, small_peak = _peak_sync("bench-sync-small-mem")
        total = _grow_to(control, large, total)
        organization, large_sync, large_time = _timed_sync("bench-sync-large")
        seen, bare_time = _bare_paging(organization)
        assert seen == large_sync.users_seen == total, (seen, large_sync.users_seen, total)
        started = time.perf_counter()
        resync = _as_task(sync_directory, organization)
        resync_time = time.perf_counter() - started
        assert resync.users_unchanged == total, (resync.users_unchanged, total)
        large_seen, large_peak = _peak_sync("bench-sync-large-mem")
    ctx.say(f"first sync: {small_sync.users_seen:,} users in {small_time:.1f} s, {total:,} users in {large_time:.1f} s"
            f" ({total / large_time:,.0f} users/s); bare Graph paging of {total:,} users {bare_time:.1f} s")
    ctx.say(f"resync with nothing changed: {total:,} users in {resync_time:.1f} s ({total / resync_time:,.0f} users/s)")
    ctx.say(f"peak traced memory: {small_peak / 2**20:.1f} MiB at {small_seen:,} users,"
            f" {large_peak / 2**20:.1f} MiB at {large_seen:,} users")
    return [
        Result(f"directory sync, first, {total:,} users (users/s)", total / large_time, total / bare_time, "users/s",
               higher_is_better=True, goal=4.0,
               note="every user created (encrypted fields, blind indexes, assignments); baseline: paging the same"
                    " users through the sync's Graph seam, writing nothing"),
        Result(f"directory resync, unchanged, {total:,} users (users/s)", total / resync_time, total / bare_time,
               "users/s", higher_is_better=True, goal=2.0,
               note="hash comparison per user, no writes; baseline as above"),
        Result(f"directory sync peak memory, {large_seen:,} vs {small_seen:,} users", large_peak / 2**20,
               small_peak / 2**20, "MiB", goal=2.0,
               note="tracemalloc peak during a first sync; 10x the users must stay well under 10x the memory"
                    " (streamed per page: the peak is one page and the caches, not the directory)"),
    ]
