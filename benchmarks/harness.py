"""The benchmark runner: a throwaway migrated database, every bench_*.py module, one table."""

from __future__ import annotations

import importlib
import pkgutil
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Result:
    """One figure and its baseline from the same run.

    ``ratio`` is how many times slower the figure is than its baseline (times per
    operation, or inverted throughputs), so a smaller ratio is better and ``goal``
    is the highest acceptable ratio (None: reported, not judged).
    """

    name: str
    figure: float
    baseline: float
    unit: str
    goal: float | None = None
    higher_is_better: bool = False
    note: str = ""

    @property
    def ratio(self) -> float:
        if self.higher_is_better:
            return self.baseline / self.figure if self.figure else float("inf")
        return self.figure / self.baseline if self.baseline else float("inf")

    @property
    def passed(self) -> bool | None:
        return None if self.goal is None else self.ratio <= self.goal


@dataclass
class Context:
    messages: list[str] = field(default_factory=list)

    def say(self, message: str) -> None:
        self.messages.append(message)
        print(f"  {message}", flush=True)


def best_of(func: Callable[[], object], *, repeat: int = 5) -> float:
    """Median of ``repeat`` timings (seconds), after one warm-up run."""
    func()
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def discover() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(f"benchmarks.{m.name}" for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def _fmt(value: float, unit: str) -> str:
    return f"{value:,.1f} {unit}" if value >= 100 else f"{value:,.3g} {unit}"


def print_table(results: list[Result]) -> None:
    header = ("benchmark", "figure", "baseline", "ratio", "goal", "result")
    rows = [
        (
            r.name,
            _fmt(r.figure, r.unit),
            _fmt(r.baseline, r.unit),
            f"{r.ratio:.2f}x",
            f"<= {r.goal:.2f}x" if r.goal is not None else "-",
            {True: "pass", False: "FAIL", None: "info"}[r.passed],
        )
        for r in results
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    for r in results:
        if r.note:
            print(f"  {r.name}: {r.note}")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Run the portal's benchmarks.")
    parser.add_argument("only", nargs="*", help="benchmark module names to run (default: all)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a figure misses its goal")
    args = parser.parse_args(argv)

    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers.base")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    print(f"Creating the throwaway benchmark database ({connection.vendor})...", flush=True)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    results: list[Result] = []
    crashed = []
    try:
        for module_name in discover():
            short = module_name.rsplit(".", 1)[-1]
            if args.only and short not in args.only and short.removeprefix("bench_") not in args.only:
                continue
            print(f"{short}:", flush=True)
            try:
                results += importlib.import_module(module_name).run(Context())
            except Exception:
                crashed.append(short)
                traceback.print_exc()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
    print_table(results)
    if crashed:
        print(f"\nCrashed: {', '.join(crashed)}")
    failed = [r.name for r in results if r.passed is False]
    if failed:
        print(f"\nMissed goals: {', '.join(failed)}")
    return 1 if crashed or (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
