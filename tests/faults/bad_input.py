"""Bad inputs, each with the dlq reason it must get: bytes that do not decode, values that do
not validate, and fills the worker must refuse (unknown instrument, a timestamp far in the
future, a fill id already applied at another offset).

Framing and bodies are built by hand (fastavro with the registry's schema) where the codec would
refuse to write them, so what reaches the broker is exactly the bad record of each kind.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from fastavro import schemaless_writer

from streams import records as r
from streams.codec.wire import pack
from streams.records import DlqReason
from tests.faults.chaos import Chaos, Input
from tests.faults.scenario import fill_record

UNKNOWN_ID = 0x7FFF_FFF0  # 31-bit like the folder's ids; checked to be unregistered


def _raw_fill(c: Chaos, fill: r.Fill, **changes: object) -> bytes:
    """A fill framed with the codec's writer schema id, its body written with changes the
    model would refuse (NaN, zero or negative quantities)."""
    version = c.codec.registry.version("fill")
    body = io.BytesIO()
    schemaless_writer(body, version.parsed, fill.to_avro() | changes)
    return pack(version.schema_id, body.getvalue())


def garbage(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """Random bytes, not Confluent-framed (the first byte is not the magic 0)."""
    data = bytes([rng.randint(1, 255)]) + rng.randbytes(rng.randint(0, 60))
    topic = rng.choice(("fills", "collateral"))
    return Input(topic, fill.account, data, reason=DlqReason.BAD_MAGIC)


def unknown_schema(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A good fill body under a schema id nobody registered."""
    body = c.codec.encode("fills", fill)[5:]
    return Input("fills", fill.account, pack(UNKNOWN_ID, body), reason=DlqReason.UNKNOWN_SCHEMA_ID)


def truncated(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A good fill cut short inside its Avro body."""
    data = c.codec.encode("fills", fill)
    cut = data[: rng.randint(6, len(data) - 1)]
    return Input("fills", fill.account, cut, reason=DlqReason.TRUNCATED)


def nan_price(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill whose price is NaN."""
    data = _raw_fill(c, fill, price=float("nan"))
    return Input("fills", fill.account, data, reason=DlqReason.INVALID_VALUE)


def zero_qty(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill of quantity 0."""
    data = _raw_fill(c, fill, qty=0.0)
    return Input("fills", fill.account, data, reason=DlqReason.INVALID_VALUE)


def negative_qty(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill of a negative quantity."""
    data = _raw_fill(c, fill, qty=-fill.qty)
    return Input("fills", fill.account, data, reason=DlqReason.INVALID_VALUE)


def unknown_instrument(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A valid fill of an instrument no reference data lists and whose name does not parse.

    (A well-formed name such as DOGE-PERPETUAL is taken without reference data, by design: a
    fill may race ahead of its instrument's broadcast; the account waits unpriced for it.)"""
    bad = fill.model_copy(update={"instrument": "BTC-NOTLISTED"})
    return Input(
        "fills", fill.account, c.codec.encode("fills", bad), bad, DlqReason.UNKNOWN_INSTRUMENT
    )


def far_future(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A valid fill stamped a day from now (the tolerance is minutes)."""
    ts = datetime.now(tz=fill.ts.tzinfo).replace(microsecond=0) + timedelta(days=1)
    bad = fill.model_copy(update={"ts": ts})
    return Input(
        "fills", fill.account, c.codec.encode("fills", bad), bad, DlqReason.FUTURE_TIMESTAMP
    )


Maker = Callable[[Chaos, r.Fill, random.Random], Input]
MAKERS: tuple[Maker, ...] = (
    garbage,
    unknown_schema,
    truncated,
    nan_price,
    zero_qty,
    negative_qty,
    unknown_instrument,
    far_future,
)


def duplicate(c: Chaos, original: Input) -> Input:
    """The very same fill again (same fill id), to land at another offset."""
    return Input(original.topic, original.key, original.value, original.record, DlqReason.DUPLICATE)


def mix(c: Chaos, good: list[Input], bad: int, t0: datetime, seed: int = 3) -> list[Input]:
    """Good fills with ``bad`` bad records spread among them: an equal share of every kind and
    of duplicates, each duplicate after the fill it repeats (same key: same partition)."""
    rng = random.Random(seed)
    out = list(good)
    kinds = len(MAKERS) + 1
    for n in range(bad):
        kind = n % kinds
        at = rng.randint(1, len(out))
        if kind == len(MAKERS):
            originals = [i for i, item in enumerate(out[:at]) if item.reason is None]
            item = duplicate(c, out[rng.choice(originals)])
        else:
            account = good[rng.randrange(len(good))].key
            fill = fill_record(1_000_000 + n, account, rng, t0)
            item = MAKERS[kind](c, fill, rng)
        out.insert(at, item)
    return out
