"""The demo's stall detector and its failure message, on a fake clock (no broker, no waiting)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.tools.demo import session
from streams.tools.demo.failure import DemoFailed
from streams.tools.demo.pacing import Pacer
from streams.tools.demo.stall import StallDetector, Stalled


@dataclass
class FakeClock:
    """A monotonic clock moved by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_moving_pipeline_never_stalls_however_slow() -> None:
    clock = FakeClock()
    detector = StallDetector(window_s=60, cap_s=900, clock=clock)
    for step in range(10):  # one new output every 59 s: slow, but moving
        clock.now += 59
        assert detector.observe(step)
        detector.check(lambda: "waiting")
    assert detector.longest_idle_s == 59


def test_nothing_new_for_the_window_is_a_stall_naming_what_it_waited_for() -> None:
    clock = FakeClock()
    detector = StallDetector(window_s=60, cap_s=900, clock=clock)
    detector.observe((1874, "12:00"))
    clock.now += 59.9
    assert not detector.observe((1874, "12:00"))  # the same snapshot is no progress
    detector.check(lambda: "unused")
    clock.now += 0.1
    with pytest.raises(Stalled) as caught:
        detector.check(lambda: "waiting for statuses: 1,874 of 2,021 accounts")
    assert (
        str(caught.value) == "waiting for statuses: 1,874 of 2,021 accounts; nothing new for 60 s"
    )
    assert not caught.value.capped


def test_the_cap_ends_a_run_that_is_still_moving() -> None:
    clock = FakeClock()
    detector = StallDetector(window_s=60, cap_s=900, clock=clock)
    for step in range(30):
        clock.now += 30
        detector.observe(step)
    with pytest.raises(Stalled) as caught:
        detector.check(lambda: "waiting for the step to settle")
    assert caught.value.capped and "900 s, the cap of a whole run" in str(caught.value)


@dataclass
class FakeObserver:
    """Outputs that stop after the first poll: one account of two has a status."""

    clock: FakeClock
    last: dict[str, object] = field(default_factory=dict)
    records: int = 0
    event_time: None = None

    def poll(self, seconds: float) -> int:
        self.clock.now += seconds
        if not self.last:
            self.last["a"], self.records = object(), 1
            return 1
        return 0


@dataclass
class FakeLoop:
    """A simulator that has executed nothing."""

    stats: Counter[str] = field(default_factory=Counter)


class FakeWorker:
    """A worker process that keeps running."""

    returncode = None

    def poll(self) -> None:
        return None


def test_a_stalled_wait_fails_naming_phase_progress_log_and_report(tmp_path: Path) -> None:
    clock = FakeClock()
    log = tmp_path / "logs" / "worker.log"
    pacer = Pacer(
        cast(Any, FakeObserver(clock)),
        cast(Any, FakeLoop()),
        cast(Any, FakeWorker()),
        StallDetector(window_s=60, cap_s=900, clock=clock),
        [log],
        tmp_path,
        phase="seed",
    )
    with pytest.raises(DemoFailed) as caught:
        pacer.statuses({"a", "b"})
    assert str(caught.value) == (
        "the demo stopped in phase seed: waiting for statuses: 1 of 2 accounts; nothing new "
        f"for 60 s. Worker log: {log}; report folder: {tmp_path}/"
    )
    assert pacer.longest_pause_phase == "seed"


def test_spma_demo_prints_the_failure_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = DemoFailed(
        "crash (scenario minute 65 of 94)",
        "waiting for the step to settle; nothing new for 60 s",
        [tmp_path / "logs" / "worker.log"],
        tmp_path,
    )

    def stalls(*_: object, **__: object) -> None:
        raise failure

    monkeypatch.setattr(session, "run_demo", stalls)
    out = CliRunner().invoke(app, ["demo", "--stall-window", "60", "--reports", str(tmp_path)])
    assert out.exit_code == 2
    assert f"spma: error: demo failed: {failure}" in out.stderr
