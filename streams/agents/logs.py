"""The worker's logging: one line per record in text or JSON (``SPMA_LOG_FORMAT``), the
libraries' repeated complaints summarised, and the worker's own lifecycle lines always shown.

When the broker is gone, aiokafka and Faust log the same connection error many times a second
(77 lines a second were seen); ``RepeatLimiter`` lets the first of each kind through and then one
a ``window_s`` with the count of those it held back, so an outage reads as a few lines a minute.
The worker's own logger ("spma") is at INFO at least, so that its start, assignment and stop
lines show at the default level (warning) without Faust's chatter at INFO.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson

TEXT_FORMAT = "[%(asctime)s] [%(process)s] [%(levelname)s] %(message)s"
LIMITED = ("aiokafka", "kafka", "faust", "mode", "aiohttp")
"""Loggers (and their children) whose repeated warnings and errors are summarised."""
WINDOW_S = 30.0
"""At most one line of a kind of repeated complaint per this many seconds."""


class RepeatLimiter(logging.Filter):
    """Passes the first warning or error of each kind (logger and message template), then one
    per ``window_s`` carrying the count of those held back; other records pass."""

    def __init__(self, window_s: float = WINDOW_S, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self.kinds: dict[tuple[str, str], tuple[float, int]] = {}  # kind -> (last shown, held)

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the record is written (a summary is added to its message when some of its
        kind were held back)."""
        if record.levelno < logging.WARNING or not record.name.startswith(LIMITED):
            return True
        kind = (record.name, str(record.msg))
        now = self.clock()
        shown, held = self.kinds.get(kind, (None, 0))
        if shown is not None and now - shown < self.window_s:
            self.kinds[kind] = (shown, held + 1)
            return False
        self.kinds[kind] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {now - shown:.0f} s)"
        return True


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
