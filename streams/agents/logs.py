"""The worker's logging: one line per record in text or JSON (``SPMA_LOG_FORMAT``), the
libraries' repeated complaints summarised, and the worker's own lifecycle lines always shown.

When the broker is gone, aiokafka and Faust log the same connection errors many times a second
(77 lines a second were seen); ``RepeatLimiter`` lets a few through a minute and sums up the rest
in one line, so an outage reads as a few lines a minute and a single error still shows at once.
The worker's own logger ("spma") is at INFO at least, so that its start, assignment and stop
lines show at the default level (warning) without Faust's chatter at INFO.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson

TEXT_FORMAT = "[%(asctime)s] [%(process)s] [%(levelname)s] %(message)s"
LIMITED = ("aiokafka", "kafka", "librdkafka", "faust", "mode", "aiohttp")
"""Loggers (and their children) whose repeated warnings and errors are summarised."""
WINDOW_S = 60.0
"""The libraries' warnings and errors are counted per window of this many seconds."""
BURST = 5
"""Of which this many are written as they come; the rest are summed up in the next window."""


class RepeatLimiter(logging.Filter):
    """Lets ``burst`` warnings and errors of the libraries through per ``window_s``, holds the
    rest back and counts them by kind (logger and message template); the first line of the next
    window carries the summary of what was held. Other records always pass."""

    def __init__(
        self, window_s: float = WINDOW_S, burst: int = BURST, clock: Any = time.monotonic
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.burst = burst
        self.clock = clock
        self.window_start = -window_s
        self.shown = 0
        self.held: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the record is written (with the summary of the last window's held records
        added to the first of a window)."""
        if record.levelno < logging.WARNING or not record.name.startswith(LIMITED):
            return True
        now = self.clock()
        if now - self.window_start >= self.window_s:
            summary = self.summary(now - self.window_start)
            self.window_start, self.shown, self.held = now, 0, Counter()
            if summary:  # (a '%' of a held message must not read as a format of this one)
                record.msg = f"{record.msg} [{summary.replace('%', '%%')}]"
        if self.shown >= self.burst:
            self.held[f"{record.name}: {str(record.msg)[:80]}"] += 1
            return False
        self.shown += 1
        return True

    def summary(self, elapsed_s: float) -> str:
        """What was held back in the window that ended, the most frequent kinds first."""
        if not self.held:
            return ""
        kinds = "; ".join(f"{n} x {kind}" for kind, n in self.held.most_common(3))
        more = len(self.held) - 3
        tail = f"; and {more} more kinds" if more > 0 else ""
        total = sum(self.held.values())
        return f"{total} more library warnings in the last {elapsed_s:.0f} s: {kinds}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, process, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def logging_config(level: str, fmt: str = "text") -> dict[str, Any]:
    """The worker's logging (a ``logging.config.dictConfig`` mapping, as Faust's worker takes
    it): stderr, the format asked, repeats summarised, "spma" at INFO at least."""
    formatter: dict[str, Any] = {"()": JsonFormatter} if fmt == "json" else {"format": TEXT_FORMAT}
    numeric = logging.getLevelName(level.upper())
    own = min(numeric, logging.INFO) if isinstance(numeric, int) else logging.INFO
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"repeats": {"()": RepeatLimiter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["repeats"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
        "loggers": {"spma": {"level": logging.getLevelName(own)}},
    }
