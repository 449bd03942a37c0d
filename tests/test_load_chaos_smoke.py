"""The short versions of `make load` and `make chaos`, in the suite.

One stack (gunicorn, a private PostgreSQL and Redis, a worker with beat, the emulator): a few
seconds of the day's mix, then every fault in turn under a stream of API writes. Afterwards every
accepted write has completed exactly once, nothing is over-assigned, and no answer was a 500.
"""

from __future__ import annotations

import glob
import shutil
import tempfile
from pathlib import Path

import pytest

from benchmarks.chaos import SCENARIOS, run_faults
from benchmarks.load import check_invariants, run_mix
from benchmarks.stack import Stack

pytestmark = [
    pytest.mark.skipif(not glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                       reason="needs PostgreSQL's server binaries for a private, restartable cluster"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def test_a_days_mix_then_every_fault_keeps_every_promise():
    # Not pytest's tmp_path: the private PostgreSQL runs as the postgres user, who cannot enter it.
    with tempfile.TemporaryDirectory(prefix="portal-smoke-") as workdir, \
            Stack(Path(workdir), members=2, web_workers=2, web_threads=4, worker_concurrency=2) as stack:
        load = run_mix(stack, users=2, seconds=8)
        assert load["total_requests"] > 0
        assert load["error_rate"] == 0, load["error_examples"]
        assert check_invariants(stack)["over_assigned"] == {}

        chaos = run_faults(stack, list(SCENARIOS), seconds=6)
    assert chaos["server_errors"] == 0, chaos["examples"]
    assert chaos["statuses"].get(202, 0) > 0  # writes were accepted around the faults
    invariants = chaos["invariants"]
    assert invariants["waiting"] == 0 and invariants["dead"] == 0
    assert invariants["duplicate_request_ids"] == 0
    assert invariants["over_assigned"] == {}
