"""The worker's logging (streams/agents/logs.py): the libraries' floods summed up, JSON lines,
the worker's own lifecycle lines shown at the default level."""

from __future__ import annotations

import logging
import logging.config

import orjson

from streams.agents.logs import JsonFormatter, RepeatLimiter, logging_config


def _record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_is_a_few_lines_and_a_summary() -> None:
    clock = Clock()
    limiter = RepeatLimiter(window_s=60.0, burst=5, clock=clock)
    flood = [_record("aiokafka.conn", "Unable connect to node %s: %s", 1, "refused")] * 300
    flood += [_record("librdkafka", "FAIL|rdkafka#consumer-3| connect failed (100%% lost)")] * 50
    written = [r for r in flood if limiter.filter(r)]
    assert len(written) == 5
    clock.now = 61.0
    first = _record("aiokafka.client", "Unable to update metadata from %s", [1])
    assert limiter.filter(first)
    message = first.getMessage()  # formats cleanly: a held '%' is escaped
    assert message.startswith("Unable to update metadata from [1] [345 more library warnings")
    assert "295 x aiokafka.conn: Unable connect to node %s: %s" in message
    assert "50 x librdkafka" in message


def test_the_workers_own_lines_and_info_always_pass() -> None:
    limiter = RepeatLimiter(window_s=60.0, burst=1, clock=Clock())
    assert limiter.filter(_record("faust.worker", "first"))
    assert not limiter.filter(_record("faust.worker", "second"))
    assert all(limiter.filter(_record("spma", "dlq %s", n)) for n in range(100))
    assert limiter.filter(_record("aiokafka", "info", level=logging.INFO))


def test_json_lines() -> None:
    line = JsonFormatter().format(_record("spma", "started %s", "worker", level=logging.INFO))
    entry = orjson.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == ("INFO", "spma", "started worker")
    assert entry["ts"].endswith("+00:00") and isinstance(entry["pid"], int)


def test_the_workers_logger_shows_info_at_the_default_level() -> None:
    config = logging_config("warning", "json")
    assert config["root"]["level"] == "WARNING"
    assert config["loggers"]["spma"]["level"] == "INFO"
    assert logging_config("debug")["loggers"]["spma"]["level"] == "DEBUG"
    logging.config.dictConfig(config)  # a valid configuration
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
