"""The streams layer's errors: one base, and the rejected input that goes to the dlq.

Every error streams/ raises derives from ``StreamError``. An input that cannot be applied raises
``InputRejected`` (or a subclass, e.g. the codec's ``CodecError``) with its dlq reason: the worker
catches that one type, once, and turns it into a dlq record (streams/agents/guard.py).
"""

from __future__ import annotations

from streams.records import DlqReason


class StreamError(Exception):
    """The base of every error raised by streams/."""


class InputRejected(StreamError):
    """An input that cannot be applied; goes to the dlq with the reason and the detail."""

    def __init__(self, reason: DlqReason, detail: str) -> None:
        """Keep the reason code and what exactly was wrong."""
        super().__init__(reason, detail)  # both in args: the error pickles
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        """The reason code, then the detail: ``TRUNCATED: 3 bytes, the 5-byte header ...``."""
        return f"{self.reason.value}: {self.detail}"
