"""The demo end to end: on the session's broker (short mode) and as `spma demo` from a shell."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra.kafka_broker import missing_tools
from streams.tools.demo.session import DemoResult, Pace, crash_path, run_demo

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def test_demo_session_on_the_shared_broker(
    kafka_bootstrap: str, unique_prefix: str, tmp_path: Path
) -> None:
    result = run_demo(
        accounts=60,
        partitions=3,
        pace=Pace(stall_window_s=60, cap_s=300),
        report_root=tmp_path,
        log=lambda *_: None,
        bootstrap=kafka_bootstrap,
        topic_prefix=unique_prefix,
    )
    assert result.accounts == 79  # 60 of the five kinds, 3 reckless longs, 16 market makers
    assert sum(result.states.values()) == result.accounts
    assert result.counts.get("dlq", 0) == 0
    assert result.prices["BTC"] < 100_000.0
    assert result.counts["liquidations"] > 0 and result.simulator["fills"] > 0
    assert result.states["HEALTHY"] > 0
    # the report: a real PNG and the counts as JSON, matching the result
    assert result.report.parent == tmp_path
    chart = (result.report / "chart.png").read_bytes()
    assert chart.startswith(PNG) and len(chart) > 10_000
    counts = orjson.loads((result.report / "counts.json").read_bytes())
    assert counts["counts"]["liquidations"] == result.counts["liquidations"]
    assert counts["final_states"] == result.states
    # every account's worst moment, deficits first, with its positions then
    worst = orjson.loads((result.report / "worst_cases.json").read_bytes())
    assert len(worst) == result.accounts
    assert {"account", "state", "ts", "deficit", "equity", "mm", "positions"} <= set(worst[0])
    bankrupt = [w for w in worst if w["state"] == "BANKRUPT"]
    assert bankrupt and worst[: len(bankrupt)] == bankrupt, "the reckless longs go bankrupt"
    assert all(w["deficit"] > 0 and w["positions"] for w in bankrupt)
    assert bankrupt[0]["positions"] == {"BTC-PERPETUAL": 1.0}
    phases = [p.label for p in result.timeline]
    assert phases[0] == "open" and "crash" in phases and "recovery" in phases
    assert any(p.entered.get("BANKRUPT") for p in result.timeline if p.label == "crash")


def _figures(result: DemoResult) -> dict[str, Any]:
    """What the summary table prints (all but the run's length), and each account's worst case
    but its calendar time (a second run may start after midnight)."""
    worst = orjson.loads((result.report / "worst_cases.json").read_bytes())
    return {
        "inputs": result.inputs,
        "counts": {k: v for k, v in result.counts.items() if k != "undecodable"},
        "simulator": result.simulator,
        "fund": result.fund_balance,
        "states": result.states,
        "prices": result.prices,
        "worst": [{k: v for k, v in w.items() if k != "ts"} for w in worst],
    }


def test_the_demo_gives_the_same_figures_for_a_seed(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Two runs of one seed, on topics of their own: the same summary, fund balance to the cent,
    final states and every account's worst case.

    Both on one account partition, as the demo runs (``PARTITIONS``: the fund reads the claims
    of several partitions in the order they happen to arrive). The runs play the crash with a
    step of each other phase around it (``crash_path``: nine steps of the demo's sixteen, each
    staged and settled as in the demo), and side by side: a run spends its time waiting for its
    worker's commits, not computing, and two runs that overlap meet the broker and the machine
    at other moments, which same figures must not depend on."""

    def run(name: str) -> DemoResult:
        return run_demo(
            accounts=60,
            partitions=1,
            pace=Pace(stall_window_s=60, cap_s=300),
            report_root=tmp_path / name,
            log=lambda *_: None,
            bootstrap=kafka_bootstrap,
            topic_prefix=f"det{name}{uuid.uuid4().hex[:6]}.",
            seed=11,
            legs=crash_path(),
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(run, ("a", "b")))
    first, second = (_figures(r) for r in runs)
    assert first["fund"] > 0 and first["counts"].get("adl", 0) > 0
    assert first["counts"].get("liquidations", 0) > 0
    differ = {k: (first[k], second[k]) for k in first if k != "worst" and first[k] != second[k]}
    assert not differ, differ
    worst = [(a, b) for a, b in zip(first["worst"], second["worst"], strict=True) if a != b]
    assert not worst, worst[:3]


@pytest.mark.tansu_lane
def test_spma_demo_exits_0_with_a_summary_naming_its_report(
    tmp_path: Path, broker_kind: str
) -> None:
    """`spma demo` starts its own broker. The command runs in the Tansu lane, on Tansu (the
    session's broker runs the same demo above, on Apache Kafka in the main run); elsewhere on
    the default choice."""
    if broker_kind == "kafka" and not os.environ.get("SPMA_TEST_DEMO_CLI"):
        pytest.skip("the Tansu lane runs `spma demo`; SPMA_TEST_DEMO_CLI=1 runs it here too")
    engine = "tansu" if broker_kind == "tansu" else "auto"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli.main",
            "demo",
            "--accounts",
            "20",
            "--stall-window",
            "60",
            "--cap",
            "150",
            "--reports",
            str(tmp_path),
            "--engine",
            engine,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=170,
    )
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
    assert "SPMA demo" in out.stdout and "liquidation orders" in out.stdout
    started = "embedded Tansu" if engine == "tansu" else "Apache Kafka"
    if engine == "auto" and missing_tools():
        started = "embedded Tansu"
    assert started in out.stdout, out.stdout[:500]
    folder = re.search(r"report: (\S+)/", out.stdout)
    assert folder, out.stdout[-1000:]
    assert (Path(folder.group(1)) / "chart.png").read_bytes().startswith(PNG)
