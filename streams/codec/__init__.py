"""Avro in the Confluent wire format over a schema registry (the schemas folder or a server)."""

from streams.codec.avro import AvroCodec, codec_from_settings
from streams.codec.catalog import CATALOG, TopicRecord
from streams.codec.errors import CodecError
from streams.codec.registry import ConfluentRegistry, FolderRegistry, SchemaRegistry

__all__ = [
    "CATALOG",
    "AvroCodec",
    "CodecError",
    "ConfluentRegistry",
    "FolderRegistry",
    "SchemaRegistry",
    "TopicRecord",
    "codec_from_settings",
]
