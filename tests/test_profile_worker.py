"""The worker profiler's reading of py-spy's folded stacks."""

from __future__ import annotations

from pathlib import Path

from bench.profile_worker import folded_shares


def test_inclusive_counts_a_function_once_per_stack_and_own_counts_the_leaf(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "run (/x/lib/python3.11/asyncio/base_events.py:10);"
        "agent (/work/main/streams/app.py:5);agent (/work/main/streams/app.py:9) 3\n"
        "run (/x/lib/python3.11/asyncio/base_events.py:10);select (/x/selectors.py:2) 1\n"
    )
    total, inclusive, own = folded_shares(raw)
    assert total == 4
    assert inclusive["run (asyncio/base_events.py)"] == 4
    assert inclusive["agent (streams/app.py)"] == 3  # twice in one stack, counted once
    assert own == {"agent (streams/app.py)": 3, "select (/x/selectors.py)": 1}
