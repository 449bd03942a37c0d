"""The floors are checked by import-linter (pyproject.toml, docs/decisions/009-layers.md).

The first test runs the project's own contracts; the others prove that the same contracts
catch a climbing import, the emulator leaking in, and msal outside licensing.microsoft, on a
small package tree built for the purpose.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
FLOORS = ["core", "accounts", "licensing", "billing", "security", "privacy", "portal"]


def run_lint_imports(cwd: Path, config: Path | None = None) -> subprocess.CompletedProcess:
    args = [str(LINT_IMPORTS), "--no-cache"]
    if config is not None:
        args.append(str(config))
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def project_contracts() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def build_tree(root: Path, imports: dict[str, str]) -> None:
    """One package per floor plus msemulator and a fake msal; ``imports`` maps a module path to its source."""
    for package in [*FLOORS, "msemulator", "msal", "tests", "benchmarks", "licensing/microsoft"]:
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    # The one allowed msal import, as in the project (its ignore rule must match something).
    imports = {"licensing/microsoft/auth.py": "import msal\n", **imports}
    for module, source in imports.items():
        (root / module).write_text(source)


def write_config(root: Path) -> Path:
    """The project's own contracts, in an ini file import-linter reads from the fixture tree."""
    settings = project_contracts()
    lines = ["[importlinter]", "root_packages =", *[f"    {p}" for p in settings["root_packages"]]]
    lines += ["include_external_packages = True", ""]
    for index, contract in enumerate(settings["contracts"]):
        lines.append(f"[importlinter:contract:{index}]")
        for key, value in contract.items():
            if isinstance(value, list):
                lines.append(f"{key} =")
                lines += [f"    {item}" for item in value]
            else:
                lines.append(f"{key} = {value}")
        lines.append("")
    path = root / "contracts.ini"
    path.write_text("\n".join(lines))
    return path


def test_project_keeps_its_contracts():
    result = run_lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_climbing_import_breaks_the_floors(tmp_path):
    build_tree(tmp_path, {"core/tenancy.py": "import accounts.models\n", "accounts/models.py": "import core\n"})
    result = run_lint_imports(tmp_path, write_config(tmp_path))
    assert result.returncode == 1, result.stdout
    assert "Floors" in result.stdout and "BROKEN" in result.stdout
    assert "core.tenancy -> accounts.models (l.1)" in result.stdout


def test_sibling_floors_stay_independent(tmp_path):
    build_tree(tmp_path, {"privacy/requests.py": "import security.grants\n", "security/grants.py": "import core\n"})
    result = run_lint_imports(tmp_path, write_config(tmp_path))
    assert result.returncode == 1, result.stdout
    assert "privacy.requests -> security.grants (l.1)" in result.stdout


def test_the_emulator_stays_a_separate_program(tmp_path):
    build_tree(tmp_path, {"licensing/client.py": "import msemulator\n", "msemulator/app.py": "import core\n"})
    result = run_lint_imports(tmp_path, write_config(tmp_path))
    assert result.returncode == 1, result.stdout
    assert "licensing.client -> msemulator" in result.stdout
    assert "msemulator.app -> core" in result.stdout


def test_msal_only_in_licensing_microsoft(tmp_path):
    build_tree(
        tmp_path,
        {"licensing/microsoft/auth.py": "import msal\n", "accounts/sso.py": "import msal\n"},
    )
    result = run_lint_imports(tmp_path, write_config(tmp_path))
    assert result.returncode == 1, result.stdout
    assert "accounts.sso -> msal" in result.stdout
    assert "licensing.microsoft.auth -> msal" not in result.stdout
