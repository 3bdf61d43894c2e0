"""Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro body."""

from __future__ import annotations

import struct

from streams.codec.errors import CodecError
from streams.records import DlqReason

MAGIC = 0
HEADER = struct.Struct(">bI")


def frame(schema_id: int, body: bytes) -> bytes:
    """Prefix an Avro body with the wire header."""
    return HEADER.pack(MAGIC, schema_id) + body


def unframe(data: bytes | None) -> tuple[int, memoryview]:
    """Split a framed record into its schema id and body; CodecError names what is wrong."""
    if not data:
        raise CodecError(DlqReason.EMPTY, "empty record (no bytes)")
    if data[0] != MAGIC:
        raise CodecError(DlqReason.BAD_MAGIC, f"magic byte is {data[0]:#04x}, want 0x00")
    if len(data) < HEADER.size:
        raise CodecError(DlqReason.TRUNCATED, f"{len(data)} bytes: the 5-byte header is cut short")
    _, schema_id = HEADER.unpack_from(data)
    return schema_id, memoryview(data)[HEADER.size :]
