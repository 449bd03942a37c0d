"""The HTTP benchmark in the suite, shortly, so it cannot rot: both servers start, every answer is a 2xx.

Throughput is not judged here (other work shares the machine); `make bench` reports it.
"""

from __future__ import annotations

import shutil

import psycopg
import pytest

from benchmarks import http_bench

pytestmark = [
    pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk)"),
    pytest.mark.skipif(not http_bench._module_available("gunicorn"), reason="needs gunicorn"),
]


def test_every_endpoint_answers_2xx_under_load():
    try:
        figures = http_bench.run(seconds=1, connections=2, threads=1, workers=1, users=200, warmup=0,
                                 say=lambda message: None)
    except RuntimeError as error:
        if "exited with" in str(error) or "nothing answered on port" in str(error):
            pytest.skip(f"a server could not start here: {error}")
        raise
    except psycopg.errors.InsufficientPrivilege as error:
        pytest.skip(f"DATABASE_URL's user may not create the benchmark's database and role: {error}")
    assert [f.name for f in figures] == [http_bench.BARE, *(name for name, *_ in http_bench.ENDPOINTS)]
    for figure in figures:
        assert figure.requests > 0, figure
        assert figure.not_2xx == 0 and figure.errors == 0, figure
