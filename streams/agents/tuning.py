"""The garbage collector's thresholds for a worker, set before its app starts (the process's
other knobs touch Faust's private API: streams/agents/private.py).
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 100)
"""A worker allocates some hundreds of objects a fill, nearly all freed by reference counting,
and holds hundreds of thousands (records, positions) that every full collection walks. With
Python's defaults (700, 10, 10) a young collection ran every few fills and a full one every
~70,000 allocations, each full one pausing the worker for tens of milliseconds: at 600 fills a
second the fill-to-status p99 was 240-370 ms, and 160 ms with the collector off; with these
thresholds, 94 ms (p50 unchanged, about 50 ms; bench/bench_pipeline.py)."""


def tune_gc(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """Collect cyclic garbage less often (young generation every `thresholds[0]` allocations)."""
    gc.set_threshold(*thresholds)
