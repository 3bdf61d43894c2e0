"""Encode models to framed Avro and decode framed Avro to validated models, per topic.

The writer schema travels as an id; decoding resolves it against the topic's reader schema, so a
newer writer (a field added with a default) and an older reader, or the other way round, agree.
"""

from __future__ import annotations

import io
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from pydantic import ValidationError

from streams.codec.catalog import CATALOG, TopicRecord
from streams.codec.errors import CodecError
from streams.codec.registry import ConfluentRegistry, FolderRegistry, SchemaRegistry
from streams.codec.wire import frame, unframe
from streams.records import DlqReason, Record


class AvroCodec:
    """Avro codec for SPMA's topics over a registry; versions pinned per record if asked."""

    def __init__(self, registry: SchemaRegistry, versions: dict[str, int] | None = None) -> None:
        self.registry = registry
        self.versions = dict(versions or {})

    def _entry(self, topic: str) -> TopicRecord:
        """The catalog entry of a topic (name without prefix)."""
        entry = CATALOG.get(topic)
        if entry is None:
            raise CodecError(DlqReason.UNKNOWN_TOPIC, f"no record is catalogued for {topic!r}")
        return entry

    def encode(self, topic: str, value: Record | dict[str, Any]) -> bytes:
        """A model (or a mapping) as framed Avro with the topic's writer schema."""
        entry = self._entry(topic)
        if isinstance(value, dict):
            value = self._validate(entry, value)
        version = self.registry.version(entry.record, self.versions.get(entry.record))
        buffer = io.BytesIO()
        try:
            schemaless_writer(buffer, version.parsed, value.model_dump())
        except (ValueError, TypeError) as exc:
            raise CodecError(DlqReason.INVALID_VALUE, f"{topic}: cannot encode: {exc}") from None
        return frame(version.schema_id, buffer.getvalue())

    def decode(self, topic: str, data: bytes | None) -> Record:
        """Framed Avro to the topic's model; CodecError with the reason when it cannot."""
        entry = self._entry(topic)
        schema_id, body = unframe(data)
        writer = self.registry.by_id(schema_id)
        reader = self.registry.version(entry.record, self.versions.get(entry.record)).parsed
        raw = self._read(topic, body, writer, reader)
        return self._validate(entry, raw)

    def _read(self, topic: str, body: memoryview, writer: Any, reader: Any) -> dict[str, Any]:
        """The Avro body as a mapping, resolved to the reader schema."""
        stream = io.BytesIO(body)
        try:
            raw = schemaless_reader(stream, writer, None if writer is reader else reader)
        except SchemaResolutionError as exc:
            raise CodecError(DlqReason.SCHEMA_MISMATCH, f"{topic}: {exc}") from None
        except (EOFError, StopIteration):
            raise CodecError(DlqReason.TRUNCATED, f"{topic}: the Avro body ends early") from None
        except Exception as exc:
            detail = f"{topic}: {type(exc).__name__}: {exc}"
            raise CodecError(DlqReason.MALFORMED_BODY, detail) from None
        if stream.tell() != len(body):
            raise CodecError(
                DlqReason.MALFORMED_BODY,
                f"{topic}: {len(body) - stream.tell()} bytes left after the record",
            )
        if not isinstance(raw, dict):
            raise CodecError(DlqReason.MALFORMED_BODY, f"{topic}: not a record")
        return raw

    @staticmethod
    def _validate(entry: TopicRecord, raw: dict[str, Any]) -> Record:
        """The mapping as the topic's model; INVALID_VALUE names the field."""
        try:
            return entry.model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or entry.record
            detail = f"{entry.record}.{where}: {first['msg']}"
            raise CodecError(DlqReason.INVALID_VALUE, detail) from None


def codec_from_settings(settings: Any) -> AvroCodec:
    """The codec the settings ask for: a Schema Registry URL, else the schemas folder."""
    if settings.schema_registry_url:
        return AvroCodec(ConfluentRegistry(settings.schema_registry_url, settings.schemas_dir))
    return AvroCodec(FolderRegistry(settings.schemas_dir))
