"""How the directory sync's cost grows with the directory: a first sync at 1x, 10x and 100x the users.

The growth curve that docs/scaling.md projects from (10,000 organisations, 1,000,000 directory users):
each point is a first sync into a fresh organisation, run the way the task runs it, against the
emulator's Fabrikam tenant grown to that size. The cost per user at 100x must stay within a small
factor of the cost at 1x (linear or better), and the traced peak memory must not follow the directory.
``BENCH_GROWTH_BASE`` sets the 1x size (default 1,000 users, so 100x is 100,000); BENCH_SCALE scales it.
"""

from __future__ import annotations

import os

from benchmarks.bench_directory_sync import SEEDED, _grow_to, _peak_sync, _timed_sync
from benchmarks.emulator import (
    emulator_process,
    linked_organization,
    portal_pointed_at,
    quiet_logs,
    scaled,
    sync_directory,
)
from benchmarks.harness import Context, Result

FACTORS = (1, 10, 100)


def run(ctx: Context) -> list[Result]:
    base = scaled(int(os.environ.get("BENCH_GROWTH_BASE", "1000")), minimum=100)
    points = []
    with quiet_logs(), emulator_process() as emulator, portal_pointed_at(emulator):
        control = emulator.control()
        control.lift_sandbox_limits()
        control.without_throttling()
        sync_directory(linked_organization("bench-growth-warmup"))  # keys, caches, imports: not the sync's cost
        total = SEEDED
        for factor in FACTORS:
            total = _grow_to(control, base * factor, total)
            _, sync, seconds = _timed_sync(f"bench-growth-{factor}x")
            seen, peak = _peak_sync(f"bench-growth-{factor}x-mem") if factor in (1, FACTORS[-1]) else (0, 0)
            points.append((factor, sync.users_seen, seconds, seen, peak))
            ctx.say(f"{factor:>4}x: {sync.users_seen:,} users in {seconds:.1f} s "
                    f"({seconds / sync.users_seen * 1000:.2f} ms per user)"
                    + (f", peak traced memory {peak / 2**20:.1f} MiB" if peak else ""))
    per_user = {factor: seconds / users for factor, users, seconds, _, _ in points}
    peaks = {factor: peak for factor, _, _, _, peak in points if peak}
    first, last = FACTORS[0], FACTORS[-1]
    return [
        Result(f"directory sync cost per user, {last}x vs {first}x the users", per_user[last] * 1000,
               per_user[first] * 1000, "ms/user", goal=1.5,
               note=f"first sync at {points[0][1]:,}, {points[1][1]:,} and {points[2][1]:,} users "
                    f"({per_user[FACTORS[1]] * 1000:.2f} ms/user at {FACTORS[1]}x); linear or better is a ratio "
                    "near 1"),
        Result(f"directory sync peak memory, {last}x vs {first}x the users", peaks[last] / 2**20,
               peaks[first] / 2**20, "MiB", goal=2.0,
               note="tracemalloc peak of a first sync: streamed per Graph page, so it must not follow the directory"),
    ]
