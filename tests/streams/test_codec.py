"""The Avro codec: round trips, versions, and one clear error per kind of bad input."""

from __future__ import annotations

import io
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from fastavro import schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from streams.codec import AvroCodec, CodecError, ConfluentRegistry, FolderRegistry
from streams.codec.wire import frame
from streams.records import DlqReason, Fill
from tests.streams.samples import SAMPLES, TS

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec(FolderRegistry(SCHEMAS))


@pytest.mark.parametrize("topic", sorted(SAMPLES))
def test_round_trip_every_record(codec: AvroCodec, topic: str) -> None:
    data = codec.encode(topic, SAMPLES[topic])
    assert data[0] == 0
    assert codec.decode(topic, data) == SAMPLES[topic]


def _fill_bytes(codec: AvroCodec, **changes: object) -> bytes:
    """A fill written raw with the v2 schema, bypassing the model's validation."""
    version = codec.registry.version("fill")
    value = SAMPLES["fills"].model_dump() | changes
    buffer = io.BytesIO()
    schemaless_writer(buffer, version.parsed, value)
    return frame(version.schema_id, buffer.getvalue())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", DlqReason.EMPTY),
        (b"\x01\x00\x00\x00\x01abc", DlqReason.BAD_MAGIC),
        (b"\x00\x00\x01", DlqReason.TRUNCATED),
        (b"\x00" + struct.pack(">I", 12345) + b"\x02ab", DlqReason.UNKNOWN_SCHEMA_ID),
    ],
)
def test_bad_frames(codec: AvroCodec, data: bytes, reason: DlqReason) -> None:
    with pytest.raises(CodecError) as err:
        codec.decode("fills", data)
    assert err.value.reason is reason
    assert reason.value in str(err.value)


def test_truncated_and_garbage_bodies(codec: AvroCodec) -> None:
    good = codec.encode("fills", SAMPLES["fills"])
    with pytest.raises(CodecError) as err:
        codec.decode("fills", good[:-6])
    assert err.value.reason in (DlqReason.TRUNCATED, DlqReason.MALFORMED_BODY)
    with pytest.raises(CodecError) as err:
        codec.decode("fills", good + b"\x00\x00")
    assert err.value.reason is DlqReason.MALFORMED_BODY
    with pytest.raises(CodecError) as err:
        codec.decode("fills", good[:5] + b"\xff" * 40)
    assert err.value.reason in (DlqReason.MALFORMED_BODY, DlqReason.TRUNCATED)


def test_another_records_schema_on_the_wrong_topic(codec: AvroCodec) -> None:
    price = codec.encode("oracle-prices", SAMPLES["oracle-prices"])
    with pytest.raises(CodecError) as err:
        codec.decode("fills", price)
    assert err.value.reason in (
        DlqReason.SCHEMA_MISMATCH,
        DlqReason.MALFORMED_BODY,
        DlqReason.TRUNCATED,
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price": math.nan}, "price"),
        ({"price": -1.0}, "price"),
        ({"qty": 0.0}, "qty"),
        ({"qty": -2.0}, "qty"),
        ({"price": math.inf}, "price"),
        ({"fill_id": ""}, "fill_id"),
    ],
)
def test_invalid_values(codec: AvroCodec, changes: dict[str, object], field: str) -> None:
    with pytest.raises(CodecError) as err:
        codec.decode("fills", _fill_bytes(codec, **changes))
    assert err.value.reason is DlqReason.INVALID_VALUE
    assert field in err.value.detail


def test_unknown_enum_symbol_is_malformed(codec: AvroCodec) -> None:
    data = bytearray(_fill_bytes(codec))
    # the side enum index follows the strings; corrupt by writing a fill whose side index is 7
    version = codec.registry.version("fill")
    body = io.BytesIO()
    schemaless_writer(body, version.parsed, SAMPLES["fills"].model_dump())
    raw = body.getvalue()
    prefix = raw.index(b"BTC-PERPETUAL") + len(b"BTC-PERPETUAL")
    bad = raw[:prefix] + b"\x0e" + raw[prefix + 1 :]
    with pytest.raises(CodecError) as err:
        codec.decode("fills", frame(version.schema_id, bad))
    assert err.value.reason in (DlqReason.MALFORMED_BODY, DlqReason.TRUNCATED)
    assert data


def test_encode_rejects_invalid_mappings(codec: AvroCodec) -> None:
    with pytest.raises(CodecError) as err:
        codec.encode("fills", SAMPLES["fills"].model_dump() | {"qty": -1})
    assert err.value.reason is DlqReason.INVALID_VALUE
    with pytest.raises(CodecError) as err:
        codec.encode("nope", SAMPLES["fills"])
    assert err.value.reason is DlqReason.UNKNOWN_TOPIC


def test_old_writer_new_reader_and_back() -> None:
    registry = FolderRegistry(SCHEMAS)
    old, new = AvroCodec(registry, {"fill": 1}), AvroCodec(registry)
    fill = SAMPLES["fills"]
    from_old = new.decode("fills", old.encode("fills", fill))
    assert from_old.order_id is None and from_old.fill_id == fill.fill_id
    from_new = old.decode("fills", new.encode("fills", fill))
    assert from_new == fill.model_copy(update={"order_id": None})


def test_folder_ids_agree_across_processes() -> None:
    here = FolderRegistry(SCHEMAS).version("fill").schema_id
    code = (
        "from pathlib import Path; from streams.codec import FolderRegistry; "
        f"print(FolderRegistry(Path({str(SCHEMAS)!r})).version('fill').schema_id)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=SCHEMAS.parent,
        timeout=60,
    )
    assert int(out.stdout) == here


def test_confluent_registry_on_mock_url() -> None:
    registry = ConfluentRegistry("mock://spma-test", SCHEMAS)
    old, new = AvroCodec(registry, {"fill": 1}), AvroCodec(registry)
    fill = SAMPLES["fills"]
    assert new.decode("fills", new.encode("fills", fill)) == fill
    assert new.decode("fills", old.encode("fills", fill)).order_id is None
    assert registry.version("fill", 1).schema_id != registry.version("fill", 2).schema_id
    with pytest.raises(CodecError) as err:
        new.decode("fills", b"\x00" + struct.pack(">I", 999_999) + b"\x00")
    assert err.value.reason is DlqReason.UNKNOWN_SCHEMA_ID


@given(
    qty=st.floats(1e-8, 1e9),
    price=st.floats(1e-6, 1e9),
    fee=st.floats(-1e6, 1e6),
    side=st.sampled_from(["BUY", "SELL"]),
    fill_id=st.text(min_size=1, max_size=40),
)
def test_random_valid_fills_round_trip(
    qty: float, price: float, fee: float, side: str, fill_id: str
) -> None:
    codec = AvroCodec(FolderRegistry(SCHEMAS))
    fill = Fill(
        fill_id=fill_id,
        account="a",
        instrument="ETH-PERPETUAL",
        side=side,
        qty=qty,
        price=price,
        fee=fee,
        liquidity="TAKER",
        ts=TS,
    )
    assert codec.decode("fills", codec.encode("fills", fill)) == fill
