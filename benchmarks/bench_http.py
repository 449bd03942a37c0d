"""The HTTP benchmark (benchmarks/http_bench.py) inside `make bench`: gunicorn, wrk, the bare Django project.

``BENCH_HTTP=0`` leaves it out; ``BENCH_HTTP_SECONDS`` (default 5) is wrk's time per endpoint. The
harness's ratio is the inverse of the table's (bare req/s over the endpoint's), so a goal of 0.15x
bare Django's throughput shows as "<= 6.67x".
"""

from __future__ import annotations

import os

from benchmarks.harness import Context, Result


def run(ctx: Context) -> list[Result]:
    from benchmarks import http_bench

    if os.environ.get("BENCH_HTTP", "1") == "0":
        ctx.say("skipped (BENCH_HTTP=0)")
        return []
    figures = http_bench.run(seconds=float(os.environ.get("BENCH_HTTP_SECONDS", 5)), say=ctx.say)
    bare, rest = figures[0], figures[1:]
    ctx.say(f"{bare.name}: {bare.rps:,.0f} req/s, p95 {bare.p95_ms:.1f} ms")
    results = []
    for f in rest:
        if f.not_2xx or f.errors:
            raise RuntimeError(f"{f.name}: {f.not_2xx} answers were not 2xx, {f.errors} socket errors")
        latency = f"p95 {f.p95_ms:.1f} ms" if f.requests else f"no request finished in {f.duration_s:.0f} s"
        results.append(Result(f"HTTP {f.name} (req/s)", f.rps, bare.rps, "req/s", goal=1 / f.goal if f.goal else None,
                              higher_is_better=True,
                              note=f"{latency} (bare {bare.p95_ms:.1f} ms); {f.ratio:.3f} of bare"))
    return results
