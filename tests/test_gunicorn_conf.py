"""The web server's settings: gunicorn finds gunicorn.conf.py where every command of the project starts it,
and each worker freezes the heap it loaded (decision 051)."""

import runpy
import subprocess
import sys
from pathlib import Path

from tests.heap import objects_frozen_by

ROOT = Path(__file__).resolve().parent.parent


def test_gunicorn_started_in_the_project_root_reads_the_projects_settings():
    printed = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "portal.wsgi:application"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    hook = next(line for line in printed.splitlines() if line.startswith("post_worker_init"))
    # gunicorn prints its own default hook as "<PostWorkerInit.post_worker_init()>", a file's as below.
    assert hook.split("=", 1)[1].strip() == "<post_worker_init()>", hook


def test_a_web_worker_freezes_what_loading_the_application_built():
    post_worker_init = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["post_worker_init"]
    # Django and the apps, not a handful of objects
    assert objects_frozen_by(lambda: post_worker_init(worker=None)) > 10_000
