"""`python -m bench` (make bench): every benchmark in turn, each printing its table
(`figure | value | target | ratio/ok`) and writing reports/bench_<name>.json; then a summary of
every row with a target, and the wall time (the whole run stays under 10 minutes on 2 cores)."""

from __future__ import annotations

import importlib
import json
import time

from bench.report import REPORTS

BENCHMARKS = (
    "bench.bench_engine",
    "bench.bench_black76",
    "bench.bench_codec",
    "bench.bench_pipeline",
    "bench.bench_memory",
    "bench.bench_scale",
    "bench.bench_solvency",
    "bench.bench_backtest",
    "bench.bench_whatif",
)


def main() -> None:
    """Run each benchmark module's main(), then list every target's verdict."""
    start = time.perf_counter()
    for name in BENCHMARKS:
        importlib.import_module(name).main()
    print(f"\ntargets (all of make bench, {time.perf_counter() - start:.0f} s)")
    for name in BENCHMARKS:
        path = REPORTS / f"bench_{name.removeprefix('bench.bench_')}.json"
        if not path.exists():
            continue
        for row in json.loads(path.read_text()).get("rows", []):
            if row.get("target") is not None:
                print(f"  {row['figure']:<58} {row['verdict']}")


if __name__ == "__main__":
    main()
