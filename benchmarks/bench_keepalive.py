"""Calls per second through the portal's Microsoft client with keep-alive against a new connection per call.

The emulator runs as a subprocess served by cheroot, with HTTP/1.1 keep-alive as Microsoft's front
doors. The figure is `MicrosoftClient.partner_center.get_sku` and `graph.subscribed_skus` through the
client's pooled session, which reuses its TLS connection. The baseline is the same calls through
the same client in the same run with `Connection: close` on every request, so the server closes each
connection and every call pays a TCP connect and a TLS handshake: what every call paid when the
emulator ran on Werkzeug's server. Sequential calls (one worker thread), then four threads sharing
one client, as a Celery worker's threads do.
"""

from __future__ import annotations

import statistics
import threading
import time

from benchmarks.emulator import FABRIKAM, emulator_process, portal_pointed_at, quiet_logs, scaled
from benchmarks.harness import Context, Result

CALLS = 300
THREADS = 4


def _client(*, keep_alive: bool):
    from licensing.microsoft.client import MicrosoftClient
    from licensing.microsoft.token_store import MemoryTokenStore

    client = MicrosoftClient.for_settings(store=MemoryTokenStore())
    if not keep_alive:
        client.http.session.headers["Connection"] = "close"
    return client


def _calls_per_second(client, calls: int, threads: int) -> float:
    def work(count: int) -> None:
        for n in range(count):
            if n % 2:
                client.graph.subscribed_skus(tenant_id=FABRIKAM)
            else:
                client.partner_center.get_sku(product_id="CFQ7TTC0LH18", sku_id="0001", country="US")

    work(2)  # tokens for both APIs, outside the clock
    per_thread = calls // threads
    workers = [threading.Thread(target=work, args=(per_thread,)) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return per_thread * threads / (time.perf_counter() - started)


def run(ctx: Context) -> list[Result]:
    calls = scaled(CALLS, minimum=40)
    results = []
    with quiet_logs(), emulator_process() as emulator, portal_pointed_at(emulator):
        emulator.control().without_throttling()
        for threads in (1, THREADS):
            kept, closed = [], []
            for _ in range(3):  # interleaved, so drift affects both alike
                kept.append(_calls_per_second(_client(keep_alive=True), calls, threads))
                closed.append(_calls_per_second(_client(keep_alive=False), calls, threads))
            figure, baseline = statistics.median(kept), statistics.median(closed)
            ctx.say(f"{threads} thread(s): keep-alive {figure:,.0f} calls/s, new connection per call"
                    f" {baseline:,.0f} calls/s")
            results.append(Result(
                f"Microsoft client calls, keep-alive, {threads} thread(s) (calls/s)", figure, baseline, "calls/s",
                goal=1.0, higher_is_better=True,
                note="PC get SKU and Graph subscribedSkus through MicrosoftClient to the emulator subprocess"
                     " (HTTPS); baseline: the same client sending Connection: close (a TLS handshake a call)",
            ))
    return results
