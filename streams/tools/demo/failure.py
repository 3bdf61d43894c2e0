"""How a demo that could not finish says so: one message naming what to look at next.

A failed run is read by someone who did not watch it, so the message says which phase of the
scenario failed, what the demo was waiting for and how far the pipeline got, and where the worker's
log and the run's report folder are. `spma demo` prints it and exits 2.
"""

from __future__ import annotations

from pathlib import Path


class DemoFailed(RuntimeError):
    """The demo stopped short: a phase, a reason, the worker's log files and the report folder."""

    def __init__(self, phase: str, reason: str, logs: list[Path], report: Path) -> None:
        self.phase = phase
        self.reason = reason
        self.logs = logs
        self.report = report
        super().__init__(self.message())

    def message(self) -> str:
        """The one message of a failed run."""
        logs = ", ".join(str(path) for path in self.logs)
        return (
            f"the demo stopped in phase {self.phase}: {self.reason}. "
            f"Worker log: {logs}; report folder: {self.report}/"
        )


def log_tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log file (what a worker said before it died), or why there are none."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc.strerror or exc})"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(tail) if tail else "(the log is empty)"
