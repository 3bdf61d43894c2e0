"""`python -m bench` (make bench): every benchmark in turn, each printing its table."""

from __future__ import annotations

import importlib

BENCHMARKS = ("bench.bench_engine", "bench.bench_solvency")


def main() -> None:
    """Run each benchmark module's main()."""
    for name in BENCHMARKS:
        importlib.import_module(name).main()


if __name__ == "__main__":
    main()
