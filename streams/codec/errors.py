"""The one error type of the codec: a reason code from a fixed set and what exactly was wrong."""

from __future__ import annotations

from streams.errors import InputRejected
from streams.records import DlqReason

CODEC_REASONS: frozenset[DlqReason] = frozenset(
    {
        DlqReason.EMPTY,
        DlqReason.BAD_MAGIC,
        DlqReason.TRUNCATED,
        DlqReason.UNKNOWN_SCHEMA_ID,
        DlqReason.MALFORMED_BODY,
        DlqReason.INVALID_VALUE,
        DlqReason.UNKNOWN_TOPIC,
        DlqReason.SCHEMA_MISMATCH,
    }
)
"""The reasons a codec failure can carry (each is also a dlq reason symbol)."""


class CodecError(InputRejected):
    """A record that cannot be encoded or decoded: ``reason`` (a DlqReason) and ``detail``."""

    def __init__(self, reason: DlqReason | str, detail: str) -> None:
        """Check the reason is a codec reason (a ValueError otherwise) and keep the detail."""
        code = DlqReason(reason)
        if code not in CODEC_REASONS:
            raise ValueError(f"{code.value} is not a codec reason")
        super().__init__(code, detail)

    def __str__(self) -> str:
        """The reason code, then the detail: ``TRUNCATED: 3 bytes, the 5-byte header ...``."""
        return f"{self.reason.value}: {self.detail}"
