"""Per-module figures from the last `make mutate` run (var/mutate/<module>/mutants/*.meta, tools/mutate.py).

Killed share = (killed + timed out) / every mutant generated, so a mutant no test reached
counts against the module. Exit code 1 when a module is below its floor (docs/mutation-testing.md).
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from mutate import MODULES, floor_for, scratch_for
from mutmut.stats import status_by_exit_code


def main() -> int:
    below = []
    print(
        f"{'module':40} {'mutants':>8} {'killed':>7} {'timeout':>8} {'survived':>9} {'no test':>8} {'share':>7}"
        f" {'floor':>6}"
    )
    for module in MODULES:
        floor = floor_for(module)
        meta = scratch_for(module) / "mutants" / f"{module}.meta"
        if not meta.exists():
            print(f"{module:40} not run")
            below.append(module)
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(status_by_exit_code[code] for code in codes.values())
        total = len(codes)
        caught = counts["killed"] + counts["timeout"]
        share = 100.0 * caught / total if total else 100.0
        print(
            f"{module:40} {total:8} {counts['killed']:7} {counts['timeout']:8} {counts['survived']:9} "
            f"{counts['no tests']:8} {share:6.1f}% {floor:5.0f}%"
        )
        if counts["not checked"]:
            checked = total - counts["not checked"]
            print(
                f"{'':40} {counts['not checked']} not checked (run stopped early); "
                f"{100.0 * caught / checked if checked else 0:.1f}% of the {checked} checked"
            )
        if share < floor:
            below.append(module)
    if below:
        print("Below the floor: " + ", ".join(below))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
