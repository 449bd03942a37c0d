"""`make mutate`: mutation testing of the money-and-trust rules, one module at a time (docs/mutation-testing.md).

Each module is mutated in its own scratch copy of the project (var/mutate/<module>/) with only the test
files that own it selected, so a mutant in the audit chain does not run the slow emulator tests that
merely write audit events. Each module's run stops after MUTATE_MODULE_TIMEOUT seconds (default 900);
MUTATE_ONLY=core/audit.py,core/tenancy.py limits the run. Figures: tools/mutation_summary.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "var" / "mutate"
PACKAGES = ["core", "accounts", "licensing", "billing", "security", "privacy", "portal", "msemulator", "tests"]
FILES = ["conftest.py", "manage.py", "pyproject.toml"]

# The module, and the test files that own its rules.
MODULES: dict[str, list[str]] = {
    "licensing/nce.py": [
        "licensing/tests/core/test_nce.py",
        "licensing/tests/core/test_nce_properties.py",
        "licensing/tests/core/test_nce_worked_examples.py",
        "licensing/tests/core/test_nce_edges.py",
    ],
    "core/api/idempotency.py": ["portal/tests/test_idempotency.py"],
    "core/audit.py": ["security/tests/test_audit_chain.py", "security/tests/test_audit_key_rotation.py"],
    "core/tenancy.py": ["tests/test_tenancy_context.py", "tests/test_tenancy_router.py"],
    "core/crypto.py": [
        "security/tests/test_key_ring_cache.py",
        "security/tests/test_crypto_edges.py",
        "security/tests/test_encryption.py",
        "security/tests/test_smoke_crypto.py",
        "security/tests/test_keystore.py",
    ],
    "core/fields.py": [
        "security/tests/test_field_definitions.py",
        "security/tests/test_field_behaviour.py",
        "security/tests/test_encryption.py",
    ],
    "licensing/services/assignments.py": [
        "licensing/tests/test_assignments.py",
        "licensing/tests/test_assignment_refusals.py",
        "licensing/tests/test_bulk.py",
        "licensing/tests/test_assign_concurrency.py",
        "licensing/tests/test_directory_views.py",
        "licensing/tests/test_assignment_outcomes.py",
    ],
}

# The killed share each module must reach (tools/mutation_summary.py); the refund rules customers are paid by
# are held higher than the rest.
DEFAULT_FLOOR = 90.0
FLOORS: dict[str, float] = {"licensing/nce.py": 95.0}


def floor_for(module: str) -> float:
    return FLOORS.get(module, DEFAULT_FLOOR)


CONFIG = """
[tool.mutmut]
source_paths = {packages!r}
only_mutate = [{module!r}]
also_copy = ["conftest.py", "manage.py"]
pytest_add_cli_args = ["-q", "--nomigrations"]
pytest_add_cli_args_test_selection = {tests!r}
# Each mutant builds its own test database; under load that takes seconds, which is not a hang.
timeout_constant = 10.0
"""


def scratch_for(module: str) -> Path:
    return SCRATCH / module.replace("/", "__").removesuffix(".py")


def prepare(module: str, tests: list[str]) -> Path:
    target = scratch_for(module)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "mutants", "var")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, target / package, ignore=ignore)
    for name in FILES:
        shutil.copy2(ROOT / name, target / name)
    pyproject = (target / "pyproject.toml").read_text()
    pyproject = pyproject.split("\n[tool.mutmut]", 1)[0].rstrip() + "\n"
    packages = [p for p in PACKAGES if p != "tests"]
    config = CONFIG.format(packages=packages, module=module, tests=tests).replace("'", '"')
    (target / "pyproject.toml").write_text(pyproject + config)
    return target


def main() -> int:
    only = [m.strip() for m in os.environ.get("MUTATE_ONLY", "").split(",") if m.strip()]
    timeout = int(os.environ.get("MUTATE_MODULE_TIMEOUT", "900"))
    jobs = os.environ.get("MUTATE_JOBS", "2")
    mutmut = Path(sys.executable).with_name("mutmut")
    for module, tests in MODULES.items():
        if only and module not in only:
            continue
        folder = prepare(module, tests)
        print(f"== {module}: {len(tests)} test file(s), at most {timeout}s", flush=True)
        # Its own process group, so that stopping it stops the mutant workers it forked too.
        run = subprocess.Popen(  # noqa: S603 - our own interpreter's mutmut, fixed arguments
            [str(mutmut), "run", "--max-children", jobs],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            run.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGTERM)
            run.wait()
            print(f"   stopped after {timeout}s; unchecked mutants are reported as such", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
