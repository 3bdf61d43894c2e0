"""The demo end to end: on the session's broker (short mode) and as `spma demo` from a shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streams.demo.session import run_demo

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[1]


def test_demo_session_on_the_shared_broker(kafka_bootstrap: str, unique_prefix: str) -> None:
    result = run_demo(
        accounts=40,
        partitions=3,
        deadline_s=120,
        log=lambda *_: None,
        bootstrap=kafka_bootstrap,
        topic_prefix=unique_prefix,
    )
    assert result.rejected == 0
    assert sum(result.states.values()) == 40
    assert result.statuses >= 40
    assert result.prices["BTC"] < 100_000.0
    assert result.states["LIQUIDATION"] + result.states["MARGIN_CALL"] > 0
    assert result.states["HEALTHY"] > 0


def test_spma_demo_exits_0_with_a_summary() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "infra.cli", "demo", "--accounts", "15", "--deadline", "100"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=150,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "SPMA demo" in out.stdout and "margin-status records" in out.stdout
