"""Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro body."""

from __future__ import annotations

import struct

from streams.codec.errors import CodecError
from streams.records import DlqReason

MAGIC = 0
HEADER = struct.Struct(">BI")
HEADER_SIZE = HEADER.size
MAX_SCHEMA_ID = 2**32 - 1

Bytes = bytes | bytearray | memoryview


def header(schema_id: int) -> bytes:
    """The 5-byte header of a schema id (CodecError(INVALID_VALUE) when it does not fit)."""
    if not 0 <= schema_id <= MAX_SCHEMA_ID:
        raise CodecError(DlqReason.INVALID_VALUE, f"schema id {schema_id} does not fit 4 bytes")
    return HEADER.pack(MAGIC, schema_id)


def pack(schema_id: int, body: Bytes) -> bytes:
    """Prefix an Avro body with the wire header."""
    return header(schema_id) + bytes(body)


def read_header(data: Bytes | None) -> int:
    """The schema id of a framed record; CodecError(EMPTY, BAD_MAGIC, TRUNCATED) when bad."""
    if not data:
        raise CodecError(DlqReason.EMPTY, "empty record (no bytes)")
    if data[0] != MAGIC:
        raise CodecError(
            DlqReason.BAD_MAGIC, f"magic byte is {data[0]:#04x}, want 0x00 (not Confluent-framed)"
        )
    if len(data) < HEADER_SIZE:
        raise CodecError(DlqReason.TRUNCATED, f"{len(data)} bytes: the 5-byte header is cut short")
    return int.from_bytes(data[1:HEADER_SIZE], "big")


def unpack(data: Bytes | None) -> tuple[int, memoryview]:
    """Split a framed record into its schema id and its body (a view, no copy)."""
    schema_id = read_header(data)
    assert data is not None
    return schema_id, memoryview(data)[HEADER_SIZE:]
