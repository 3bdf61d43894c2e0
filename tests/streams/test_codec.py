"""The Avro codec: round trips, schema evolution both ways, registries, and one clear error
reason per kind of bad input."""

from __future__ import annotations

import copy
import io
import math
import pickle
import struct
import subprocess
import sys
from typing import Any

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.settings import Settings
from schemas import SCHEMAS_DIR
from streams.codec import (
    AvroCodec,
    CodecError,
    ConfluentRegistry,
    FolderRegistry,
    codec_from_settings,
)
from streams.codec.wire import header, pack, read_header, unpack
from streams.records import AccountState, DlqReason, Fill, Liquidity, MarginCall, Record, Side
from streams.topics.catalog import CATALOG
from tests.streams.samples import ALL_SAMPLES, SAMPLES, TS
from tests.streams.schema_projection import project

REGISTRY = FolderRegistry(SCHEMAS_DIR)
CODEC = AvroCodec(REGISTRY)
STEM_OF = {kind.model: kind.record for entry in CATALOG.values() for kind in entry.types()}


def _sample_ids() -> list[str]:
    """Readable ids for ALL_SAMPLES."""
    return [f"{topic}:{type(record).__name__}" for topic, record in ALL_SAMPLES]


@pytest.mark.parametrize(("topic", "record"), ALL_SAMPLES, ids=_sample_ids())
def test_round_trip_every_record(topic: str, record: Record) -> None:
    """Each record type encodes under its latest id and decodes equal, as a model or a mapping."""
    data = CODEC.encode(topic, record)
    assert data[0] == 0
    assert read_header(data) == REGISTRY.version(STEM_OF[type(record)]).schema_id
    decoded = CODEC.decode(topic, data)
    assert type(decoded) is type(record) and decoded == record
    if type(record) is CATALOG[topic].model:  # a mapping is validated as the topic's main model
        assert CODEC.encode(topic, record.model_dump()) == data


def _without_new_fields(record: Record, schema: dict[str, Any]) -> Record:
    """The record as a reader of an older schema sees it: the fields added since (nested ones
    too) at their defaults."""
    return type(record).model_validate(project(record.model_dump(), schema))


EVOLVED = [
    (topic, record, stem, version)
    for topic, record in ALL_SAMPLES
    for stem in [STEM_OF[type(record)]]
    for version in sorted(REGISTRY.records()[stem])
    if version < max(REGISTRY.records()[stem])
]


@pytest.mark.parametrize(("topic", "record", "stem", "old"), EVOLVED, ids=lambda x: str(x)[:24])
@pytest.mark.parametrize(
    "registry", [REGISTRY, ConfluentRegistry("mock://spma-evolution")], ids=["folder", "confluent"]
)
def test_old_writer_new_reader_and_back(
    registry: Any, topic: str, record: Record, stem: str, old: int
) -> None:
    """Older writers are read by the newer reader and the reverse, on both registries."""
    older, newer = AvroCodec(registry, versions={stem: old}), AvroCodec(registry)
    old_schema = registry.version(stem, old).schema
    expected = _without_new_fields(record, old_schema)
    old_fields = {f["name"] for f in old_schema["fields"]}
    new_fields = {f["name"] for f in registry.version(stem).schema["fields"]}
    if new_fields != old_fields:  # (an evolution may only add enum symbols: dlq_record v2)
        assert expected != record, "the sample should set the fields added since"
    old_data, new_data = older.encode(topic, record), newer.encode(topic, record)
    assert read_header(old_data) != read_header(new_data)
    assert newer.decode(topic, old_data) == expected
    assert older.decode(topic, new_data) == expected
    assert newer.decode(topic, new_data) == record


def test_margin_call_v1_data_reads_as_margin_call_state() -> None:
    """A v1 margin call (no state field) reads with the Avro default MARGIN_CALL."""
    v1 = AvroCodec(REGISTRY, versions={"margin_call": 1})
    call = CODEC.decode("margin-calls", v1.encode("margin-calls", SAMPLES["margin-calls"]))
    assert isinstance(call, MarginCall)
    assert call.state is AccountState.MARGIN_CALL


def _fill_bytes(**changes: Any) -> bytes:
    """A fill written raw with the latest schema, bypassing the model's validation."""
    version = REGISTRY.version("fill")
    value = SAMPLES["fills"].to_avro() | changes
    buffer = io.BytesIO()
    schemaless_writer(buffer, version.parsed, value)
    return pack(version.schema_id, buffer.getvalue())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", DlqReason.EMPTY),
        (None, DlqReason.EMPTY),
        (b"\x01\x00\x00\x00\x01abc", DlqReason.BAD_MAGIC),
        (b'{"fill_id": "f-1"}', DlqReason.BAD_MAGIC),
        (b"\x00", DlqReason.TRUNCATED),
        (b"\x00\x00\x01", DlqReason.TRUNCATED),
        (b"\x00" + struct.pack(">I", 12345) + b"\x02ab", DlqReason.UNKNOWN_SCHEMA_ID),
    ],
)
def test_bad_frames(data: bytes | None, reason: DlqReason) -> None:
    """Empty, unframed, short-header and unknown-id records each get their own reason."""
    with pytest.raises(CodecError) as err:
        CODEC.decode("fills", data)
    assert err.value.reason is reason
    assert str(err.value).startswith(f"{reason.value}: ")


@pytest.mark.parametrize(("topic", "record"), ALL_SAMPLES, ids=_sample_ids())
def test_every_truncation_of_a_body_is_truncated(topic: str, record: Record) -> None:
    """Cutting a valid record anywhere in its body gives TRUNCATED."""
    good = CODEC.encode(topic, record)
    for cut in range(5, len(good)):
        with pytest.raises(CodecError) as err:
            CODEC.decode(topic, good[:cut])
        assert err.value.reason is DlqReason.TRUNCATED, cut


def test_garbage_bodies_are_malformed() -> None:
    """Trailing bytes and invalid UTF-8 are MALFORMED_BODY."""
    good = CODEC.encode("fills", SAMPLES["fills"])
    with pytest.raises(CodecError) as err:
        CODEC.decode("fills", good + b"\x00\x00")
    assert err.value.reason is DlqReason.MALFORMED_BODY and "2 bytes left" in err.value.detail
    # a string of invalid UTF-8 where fill_id is
    bad_utf8 = good[:5] + b"\x04\xff\xfe" + good[5 + 1 + len(b"f-1") :]
    with pytest.raises(CodecError) as err:
        CODEC.decode("fills", bad_utf8)
    assert err.value.reason is DlqReason.MALFORMED_BODY


def test_enum_index_out_of_range_is_malformed() -> None:
    """An enum index the writer schema does not have is MALFORMED_BODY."""
    raw = _fill_bytes()
    at = raw.index(b"BTC-PERPETUAL") + len(b"BTC-PERPETUAL")
    assert raw[at] == 2  # SELL is index 1, zigzag-encoded as 2
    with pytest.raises(CodecError) as err:
        CODEC.decode("fills", raw[:at] + b"\x0e" + raw[at + 1 :])
    assert err.value.reason is DlqReason.MALFORMED_BODY


def test_another_records_schema_on_the_wrong_topic() -> None:
    """A record of another type on a topic is SCHEMA_MISMATCH, naming the writer's record."""
    price = CODEC.encode("oracle-prices", SAMPLES["oracle-prices"])
    with pytest.raises(CodecError) as err:
        CODEC.decode("fills", price)
    assert err.value.reason is DlqReason.SCHEMA_MISMATCH
    assert "OraclePrice" in err.value.detail


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price": math.nan}, "price"),
        ({"price": -1.0}, "price"),
        ({"price": 0.0}, "price"),
        ({"price": math.inf}, "price"),
        ({"qty": 0.0}, "qty"),
        ({"qty": -2.0}, "qty"),
        ({"qty": math.nan}, "qty"),
        ({"fee": -math.inf}, "fee"),
        ({"fill_id": ""}, "fill_id"),
        ({"account": ""}, "account"),
    ],
)
def test_invalid_values(changes: dict[str, object], field: str) -> None:
    """NaN, infinite, zero or negative prices and quantities are INVALID_VALUE naming the field."""
    with pytest.raises(CodecError) as err:
        CODEC.decode("fills", _fill_bytes(**changes))
    assert err.value.reason is DlqReason.INVALID_VALUE
    assert err.value.detail.startswith(f"fill.{field}:"), err.value.detail


def test_invalid_values_in_nested_records_name_the_path() -> None:
    """A bad value inside a nested record is reported with its path."""
    status = SAMPLES["margin-status"].to_avro()
    status["components"][0]["delta"] = math.nan
    version = REGISTRY.version("margin_status")
    body = io.BytesIO()
    schemaless_writer(body, version.parsed, status)
    with pytest.raises(CodecError) as err:
        CODEC.decode("margin-status", pack(version.schema_id, body.getvalue()))
    assert err.value.reason is DlqReason.INVALID_VALUE
    assert "components.0.delta" in err.value.detail


def test_unknown_enum_symbol_from_a_newer_writer_is_an_invalid_value() -> None:
    """A symbol our reader does not know is INVALID_VALUE naming the field."""
    registry = FolderRegistry(SCHEMAS_DIR)
    codec = AvroCodec(registry)
    codec.encode("fills", SAMPLES["fills"])  # prepare the reader before a newer writer appears
    newer = copy.deepcopy(registry.version("fill").schema)
    liquidity = next(f for f in newer["fields"] if f["name"] == "liquidity")
    liquidity["type"]["symbols"].append("RPI")
    schema_id = registry.register("io.spma.v1.Fill", newer)
    assert registry.latest("fill").schema_id == schema_id
    assert registry.version("fill").schema_id != schema_id, "the writer stays the folder's"
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(newer), SAMPLES["fills"].to_avro() | {"liquidity": "RPI"})
    with pytest.raises(CodecError) as err:
        codec.decode("fills", pack(schema_id, body.getvalue()))
    assert err.value.reason is DlqReason.INVALID_VALUE
    assert err.value.detail.startswith("fill.liquidity: unknown symbol 'RPI'"), err.value.detail
    # the same writer with a known symbol reads fine
    ok = io.BytesIO()
    schemaless_writer(ok, parse_schema(newer), SAMPLES["fills"].to_avro())
    assert codec.decode("fills", pack(schema_id, ok.getvalue())) == SAMPLES["fills"]


def test_unknown_enum_symbol_in_a_mapping_is_an_invalid_value() -> None:
    """Encoding a mapping with an unknown symbol is INVALID_VALUE."""
    with pytest.raises(CodecError) as err:
        CODEC.encode("fills", SAMPLES["fills"].model_dump() | {"side": "HOLD"})
    assert err.value.reason is DlqReason.INVALID_VALUE and "fill.side" in err.value.detail


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_encode_rejects_invalid_mappings_unknown_topics_and_foreign_models() -> None:
    """Encoding refuses bad values, unknown topics and models the topic does not carry."""
    with pytest.raises(CodecError) as err:
        CODEC.encode("fills", SAMPLES["fills"].model_dump() | {"qty": -1})
    assert err.value.reason is DlqReason.INVALID_VALUE and "fill.qty" in err.value.detail
    with pytest.raises(CodecError) as err:
        CODEC.encode("nope", SAMPLES["fills"])
    assert err.value.reason is DlqReason.UNKNOWN_TOPIC
    with pytest.raises(CodecError) as err:
        CODEC.decode("nope", CODEC.encode("fills", SAMPLES["fills"]))
    assert err.value.reason is DlqReason.UNKNOWN_TOPIC
    with pytest.raises(CodecError) as err:
        CODEC.encode("fills", SAMPLES["oracle-prices"])
    assert err.value.reason is DlqReason.SCHEMA_MISMATCH
    with pytest.raises(CodecError) as err:
        # model_copy skips validation: the writer itself refuses a str where a double goes
        CODEC.encode("liquidations", SAMPLES["liquidations"].model_copy(update={"qty": "x"}))
    assert err.value.reason is DlqReason.INVALID_VALUE


def test_codec_error_reasons_strings_and_pickling() -> None:
    """CodecError takes only codec reasons, prints 'REASON: detail', and pickles."""
    err = CodecError("TRUNCATED", "3 bytes")
    assert err.reason is DlqReason.TRUNCATED and isinstance(err.reason, str)
    assert str(err) == "TRUNCATED: 3 bytes" and err.detail == "3 bytes"
    again = pickle.loads(pickle.dumps(err))
    assert again.reason is DlqReason.TRUNCATED and again.detail == "3 bytes"
    with pytest.raises(ValueError):
        CodecError(DlqReason.DUPLICATE, "not a codec failure")
    with pytest.raises(ValueError):
        CodecError("NOPE", "x")


def test_wire_pack_and_unpack() -> None:
    """The Confluent header is magic 0 and a 4-byte big-endian id."""
    data = pack(0x01020304, b"body")
    assert data == b"\x00\x01\x02\x03\x04body"
    schema_id, body = unpack(data)
    assert schema_id == 0x01020304 and bytes(body) == b"body"
    assert header(2**32 - 1) == b"\x00\xff\xff\xff\xff"
    with pytest.raises(CodecError) as err:
        header(2**32)
    assert err.value.reason is DlqReason.INVALID_VALUE


def test_folder_ids_agree_across_processes() -> None:
    """Another process (another hash seed) derives the same folder ids."""
    ids = {
        f"{stem}.v{n}": v.schema_id
        for stem, vs in REGISTRY.records().items()
        for n, v in vs.items()
    }
    code = (
        "from streams.codec import FolderRegistry; r = FolderRegistry(); "
        "print(sorted((f'{s}.v{n}', v.schema_id) for s, vs in r.records().items() "
        "for n, v in vs.items()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=SCHEMAS_DIR.parent,
        timeout=60,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert out.stdout.strip() == str(sorted(ids.items()))


def test_confluent_registry_on_a_mock_url() -> None:
    """The Schema Registry client (mock://) registers the fill versions and serves ids."""
    registry = ConfluentRegistry("mock://spma-test")
    old, new = AvroCodec(registry, versions={"fill": 1}), AvroCodec(registry)
    fill = SAMPLES["fills"]
    assert new.decode("fills", new.encode("fills", fill)) == fill
    for read in (
        new.decode("fills", old.encode("fills", fill)),
        old.decode("fills", new.encode("fills", fill)),
    ):
        assert isinstance(read, Fill) and read.order_id is None
    newest = max(REGISTRY.records()["fill"])
    v1, v2 = registry.version("fill", 1), registry.version("fill", newest)
    assert v1.schema_id != v2.schema_id
    latest = registry.latest("io.spma.v1.Fill")
    assert (latest.version, latest.schema_id) == (newest, v2.schema_id)
    assert registry.latest("fill").schema_id == v2.schema_id
    assert registry.register("io.spma.v1.Fill", v2.schema) == v2.schema_id
    assert registry.schema_by_id(v1.schema_id) is v1.parsed
    with pytest.raises(KeyError):
        registry.latest("io.spma.v1.Nothing")
    with pytest.raises(CodecError) as err:
        new.decode("fills", b"\x00" + struct.pack(">I", 999_999) + b"\x00")
    assert err.value.reason is DlqReason.UNKNOWN_SCHEMA_ID


def test_confluent_registry_reads_ids_registered_by_another_writer() -> None:
    """A reader fetches and caches an id that another client registered."""
    registry = ConfluentRegistry("mock://spma-shared")
    writer = ConfluentRegistry("mock://spma-shared")
    writer.client = registry.client  # one registry server, two processes' caches
    data = AvroCodec(writer).encode("margin-status", SAMPLES["margin-status"])
    assert AvroCodec(registry).decode("margin-status", data) == SAMPLES["margin-status"]


def test_a_registry_outage_is_not_an_unknown_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry error other than 404 propagates, so valid records never go to the dlq."""
    registry = ConfluentRegistry("mock://spma-outage")

    def unavailable(*args: object, **kwargs: object) -> None:
        """What a registry that is down answers."""
        raise SchemaRegistryError(503, 50301, "service unavailable")

    monkeypatch.setattr(registry.client, "get_schema", unavailable)
    with pytest.raises(SchemaRegistryError):
        AvroCodec(registry).decode("fills", b"\x00" + struct.pack(">I", 7) + b"\x00")


def test_codec_from_settings() -> None:
    """No registry URL means the folder registry; a URL means the Schema Registry."""
    folder = codec_from_settings(Settings(schema_registry_url=None))
    assert isinstance(folder.registry, FolderRegistry)
    confluent = codec_from_settings(Settings(schema_registry_url="mock://spma-settings"))
    assert isinstance(confluent.registry, ConfluentRegistry)
    for codec in (folder, confluent):
        assert codec.decode("fills", codec.encode("fills", SAMPLES["fills"])) == SAMPLES["fills"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    qty=st.floats(1e-8, 1e9),
    price=st.floats(1e-6, 1e9),
    fee=st.floats(-1e6, 1e6),
    side=st.sampled_from(["BUY", "SELL"]),
    liquidity=st.sampled_from(["MAKER", "TAKER", "LIQUIDATION", "ADL"]),
    fill_id=st.text(min_size=1, max_size=40),
    sub_account=st.none() | st.text(min_size=1, max_size=10),
    order_id=st.none() | st.text(max_size=10),
    millis=st.integers(0, 2**41),
)
def test_random_valid_fills_round_trip(
    qty: float,
    price: float,
    fee: float,
    side: str,
    liquidity: str,
    fill_id: str,
    sub_account: str | None,
    order_id: str | None,
    millis: int,
) -> None:
    """Property: any valid fill round trips exactly."""
    fill = Fill(
        fill_id=fill_id,
        account="a",
        sub_account=sub_account,
        instrument="ETH-PERPETUAL",
        side=Side(side),
        qty=qty,
        price=price,
        fee=fee,
        liquidity=Liquidity(liquidity),
        order_id=order_id,
        ts=TS.fromtimestamp(millis / 1000, tz=TS.tzinfo),
    )
    assert CODEC.decode("fills", CODEC.encode("fills", fill)) == fill


FILL_HEADER = CODEC.encode("fills", SAMPLES["fills"])[:5]


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=120), topic=st.sampled_from(sorted(CATALOG)))
def test_random_bytes_only_ever_raise_codec_errors(body: bytes, topic: str) -> None:
    """Property: arbitrary bytes, framed or not, fail only with CodecError."""
    for data in (body, FILL_HEADER + body):
        try:
            CODEC.decode(topic, data)
        except CodecError as err:
            assert err.reason in DlqReason
