"""Avro in the Confluent wire format over a schema registry (the schemas folder or a server)."""

from streams.codec.avro import AvroCodec, codec_from_settings
from streams.codec.errors import CODEC_REASONS, CodecError
from streams.codec.registry import (
    ConfluentRegistry,
    FolderRegistry,
    SchemaRegistry,
    SchemaVersion,
    fingerprint_id,
)

__all__ = [
    "CODEC_REASONS",
    "AvroCodec",
    "CodecError",
    "ConfluentRegistry",
    "FolderRegistry",
    "SchemaRegistry",
    "SchemaVersion",
    "codec_from_settings",
    "fingerprint_id",
]
