"""Login-pattern detector throughput over 1,000,000 synthetic sign-in events, and its memory.

The goal is a floor of 50,000 events/s (issue 10), so the "baseline" is that floor and the ratio is
floor / figure (at most 1.0 passes). The same run also times the bare event stream without the
detectors, reported in the note, so the detectors' own cost is visible.

Memory must stay flat: the run records peak RSS before and after, and a second pass under
tracemalloc compares the detectors' traced memory after 500,000 and after 1,000,000 events. The state
is bounded by the LRU limits (accounts, sources, 20 devices and networks per account); the first half
of the stream fills it, the second half must not grow it.
"""

from __future__ import annotations

import gc
import random
import resource
import time
import tracemalloc

from benchmarks.harness import Context, Result

EVENTS = 1_000_000
FLOOR_EVENTS_PER_SECOND = 50_000
ACCOUNTS = 20_000
SOURCES = 30_000


def synthetic_stream(count: int, *, seed: int = 10):
    """A day's mix: mostly good sign-ins from a person's usual devices and networks, second factors,
    some wrong passwords, the odd traveller, wrong codes, and spraying bursts from a few sources."""
    from security.detection import Location, LoginEvent

    rng = random.Random(seed)
    places = [Location(40.71, -74.0, "US"), Location(50.11, 8.68, "DE"), Location(-33.87, 151.2, "AU"),
              Location(51.51, -0.13, "GB"), Location(35.68, 139.65, "JP")]
    accounts = [f"acct-{i}" for i in range(ACCOUNTS)]
    devices = [f"dev-{i}" for i in range(ACCOUNTS * 2)]
    ips = [f"ip-{i}" for i in range(SOURCES)]
    nets = [f"net-{i}" for i in range(SOURCES // 4)]
    at = 1_800_000_000.0
    rand, choice = rng.random, rng.choice
    for n in range(count):
        at += 0.05
        i = int(rand() * ACCOUNTS)
        account = accounts[i]
        roll = rand()
        if roll < 0.70:
            j = (i * 7 + (n & 1)) % SOURCES
            yield LoginEvent(at, account, True, "password", devices[2 * i + (n & 1)], ips[j], nets[j // 4],
                             places[i % 5], None)
        elif roll < 0.85:
            yield LoginEvent(at, account, True, "totp", devices[2 * i], ips[i % SOURCES], nets[(i % SOURCES) // 4])
        elif roll < 0.95:
            yield LoginEvent(at, account, False, "password", devices[2 * i], ips[i % SOURCES], "")
        elif roll < 0.97:
            yield LoginEvent(at, account, False, "totp", devices[2 * i], ips[i % SOURCES], "")
        elif roll < 0.98:
            j = int(rand() * SOURCES)
            yield LoginEvent(at, account, True, "password", f"dev-new-{n % 5000}", ips[j], nets[j // 4],
                             choice(places), rand() < 0.5)
        else:  # spraying: a handful of sources trying many accounts
            yield LoginEvent(at, account, False, "password", "", ips[n % 7], nets[0])


def _detect(count: int) -> tuple[float, int]:
    from security.detection import Monitor

    monitor = Monitor()
    feed = monitor.feed
    found = 0
    start = time.perf_counter()
    for event in synthetic_stream(count):
        if feed(event):
            found += 1
    return time.perf_counter() - start, found


def _stream_only(count: int) -> float:
    start = time.perf_counter()
    for _ in synthetic_stream(count):
        pass
    return time.perf_counter() - start


def _traced_growth() -> tuple[float, float]:
    """Traced memory (MiB) held by the detectors after 500,000 and after 1,000,000 events."""
    from security.detection import Monitor

    monitor = Monitor()
    marks = {}
    gc.collect()
    tracemalloc.start()
    try:
        for n, event in enumerate(synthetic_stream(EVENTS), start=1):
            monitor.feed(event)
            if n in (500_000, EVENTS):
                gc.collect()
                marks[n] = tracemalloc.get_traced_memory()[0] / 2**20
    finally:
        tracemalloc.stop()
    return marks[500_000], marks[EVENTS]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def run(ctx: Context) -> list[Result]:
    _detect(50_000)  # warm-up
    rss_before = _peak_rss_mib()
    elapsed, found = _detect(EVENTS)
    rss_after = _peak_rss_mib()
    bare = _stream_only(EVENTS)
    rate = EVENTS / elapsed
    early, late = _traced_growth()
    ctx.say(f"{EVENTS:,} events in {elapsed:.2f} s ({rate:,.0f}/s); the stream alone {bare:.2f} s; "
            f"{found:,} events with findings")
    ctx.say(f"peak RSS {rss_before:.0f} -> {rss_after:.0f} MiB; traced detector memory {early:.1f} MiB after "
            f"500,000 events, {late:.1f} MiB after {EVENTS:,}")
    return [
        Result("login detectors: events per second", rate, FLOOR_EVENTS_PER_SECOND, "ev/s", goal=1.0,
               higher_is_better=True,
               note=f"baseline is the 50,000/s floor; stream generation alone takes {bare / elapsed:.0%} "
                    f"of the run; peak RSS grew {rss_after - rss_before:.1f} MiB"),
        Result("login detectors: memory growth 500k -> 1M events", late, early, "MiB", goal=1.1,
               note="tracemalloc, after a full collection; flat means the ratio stays near 1.0"),
    ]
