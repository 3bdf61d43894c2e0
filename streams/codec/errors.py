"""The one error type of the codec: a reason code (a DlqReason) and what exactly was wrong."""

from __future__ import annotations

from streams.records import DlqReason


class CodecError(Exception):
    """A record that cannot be encoded or decoded; ``reason`` is a DlqReason code."""

    def __init__(self, reason: DlqReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
