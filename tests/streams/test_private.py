"""Table writes outside one event's processing (timers, batches) aimed at a partition."""

from __future__ import annotations

from typing import Any

import faust
import pytest

from streams.agents.private import writing_to


def _table(partitions: int) -> tuple[faust.App, Any, list[int]]:
    """A memory-store table whose changelog sends are recorded by partition."""
    app = faust.App("table-writes-test", store="memory://", broker="kafka://127.0.0.1:1")
    table = app.Table("t", default=None, partitions=partitions, key_type=str, value_type=bytes)
    sent: list[int] = []
    send = table.send_changelog

    def record(partition: int | None, key: Any, value: Any, *args: Any, **kw: Any) -> Any:
        sent.append(partition)  # type: ignore[arg-type]
        return send(partition, key, value, *args, **kw)

    table.send_changelog = record  # type: ignore[method-assign]
    return app, table, sent


async def test_a_write_goes_to_the_named_partition_and_its_changelog() -> None:
    _, table, sent = _table(4)
    with writing_to("claims", 3):
        table["a"] = b"1"
    with writing_to("claims", 1):
        table["b"] = b"2"
    assert (table.data.get("a"), table.data.get("b")) == (b"1", b"2")
    assert sent == [3, 1]


async def test_without_it_faust_refuses_a_write_from_a_timer() -> None:
    """What the module is for: a timer has no current event to take the partition from."""
    _, table, sent = _table(1)
    with pytest.raises(TypeError, match="outside of stream iteration"):
        table["a"] = b"1"
    with writing_to("claims", 0):
        table["a"] = b"1"
    assert sent == [0]
