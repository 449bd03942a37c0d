"""`make mutate`: mutation testing of the money-and-trust rules, one module at a time (docs/mutation-testing.md).

Each module is mutated in its own scratch copy of the project (var/mutate/<module>/) with only the test
files that own it selected, so a mutant in the audit chain does not run the slow emulator tests that
merely write audit events. Each module's run stops after MUTATE_MODULE_TIMEOUT seconds (default 900);
MUTATE_ONLY=core/audit.py,core/tenancy.py limits the run. Figures: tools/mutation_summary.py.

With DATABASE_URL naming PostgreSQL the tests run there, so the code that only runs on PostgreSQL (row-level
security settings, single-statement inserts, row locks) is mutated against tests that reach it. The schema is
migrated once into a template database, test_<NAME>_mutate; each concurrent mutant worker copies it into a
database of its own (conftest.py, _mutation_worker_database). Without DATABASE_URL: SQLite, --nomigrations.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
pytest_add_cli_args = {pytest_args!r}
pytest_add_cli_args_test_selection = {tests!r}
# Each mutant gets its own test database; under load that takes seconds, which is not a hang. On PostgreSQL
# (a copy of the template, then Django's check that every migration is applied) it takes longer still, and a
# mutant stopped for time counts as caught, so the allowance is wider there.
timeout_constant = {timeout_constant}
"""


def postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if urlsplit(url).scheme in {"postgres", "postgresql", "pgsql"} else None


def build_template(url: str) -> None:
    """Migrate test_<NAME>_mutate once, the way a test run builds its database, for the workers to copy.

    Django's own test-database creation, run against <NAME>_mutate, names it test_<NAME>_mutate: the name
    conftest.py's mutation workers copy. Rebuilt on every run, so it follows the migrations.
    """
    parts = urlsplit(url)
    template_url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_mutate"))
    script = (
        "import django; django.setup(); from django.db import connection; "
        "connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)"
    )
    env = {
        **os.environ,
        "DATABASE_URL": template_url,
        "PORTAL_TESTING": "1",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    env.pop("MUTANT_UNDER_TEST", None)
    print(f"== template database test_{parts.path.strip('/')}_mutate: migrating", flush=True)
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)  # noqa: S603 - fixed arguments


def scratch_for(module: str) -> Path:
    return SCRATCH / module.replace("/", "__").removesuffix(".py")


def prepare(module: str, tests: list[str], *, postgres: bool) -> Path:
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
    # On PostgreSQL the copied template already holds the migrated schema, and migrations are what create
    # row-level security; on SQLite the schema is built from the models, faster than migrating.
    pytest_args = ["-q"] if postgres else ["-q", "--nomigrations"]
    config = CONFIG.format(
        packages=packages,
        module=module,
        tests=tests,
        pytest_args=pytest_args,
        timeout_constant=60.0 if postgres else 10.0,
    ).replace("'", '"')
    (target / "pyproject.toml").write_text(pyproject + config)
    return target


def main() -> int:
    only = [m.strip() for m in os.environ.get("MUTATE_ONLY", "").split(",") if m.strip()]
    timeout = int(os.environ.get("MUTATE_MODULE_TIMEOUT", "900"))
    jobs = os.environ.get("MUTATE_JOBS", "2")
    mutmut = Path(sys.executable).with_name("mutmut")
    url = postgres_url()
    if url:
        build_template(url)
    for module, tests in MODULES.items():
        if only and module not in only:
            continue
        folder = prepare(module, tests, postgres=url is not None)
        database = "PostgreSQL" if url else "SQLite"
        print(f"== {module}: {len(tests)} test file(s) on {database}, at most {timeout}s", flush=True)
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
