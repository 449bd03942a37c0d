"""`make bench`: performance figures as ratios against baselines measured in the same run.

Run ``python -m benchmarks``. Every ``benchmarks/bench_*.py`` module exposes
``run(ctx) -> list[Result]``; the harness prints one table. See benchmarks/harness.py.
"""
