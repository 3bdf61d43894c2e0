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
from datetime import UTC, datetime, timedelta

from fastavro import schemaless_writer

from streams import records as r
from streams.codec.wire import pack
from streams.records import DlqReason
from tests.faults.chaos import Chaos, Input
from tests.faults.scenario import fill_record
from tests.streams import samples

UNKNOWN_ID = 0x7FFF_FFF0  # 31-bit like the folder's ids; checked to be unregistered


def _raw(c: Chaos, stem: str, record: r.Record, **changes: object) -> bytes:
    """A record framed with the codec's writer schema id of its stem (``fill``), its body
    written with changes the model would refuse (NaN, zero or negative quantities)."""
    version = c.codec.registry.version(stem)
    body = io.BytesIO()
    schemaless_writer(body, version.parsed, record.to_avro() | changes)
    return pack(version.schema_id, body.getvalue())


def _raw_fill(c: Chaos, fill: r.Fill, **changes: object) -> bytes:
    """A fill with changes written past its model."""
    return _raw(c, "fill", fill, **changes)


def _noise(rng: random.Random) -> bytes:
    """Random bytes whose first is not the magic 0 (not Confluent-framed)."""
    return bytes([rng.randint(1, 255)]) + rng.randbytes(rng.randint(0, 60))


def garbage(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """Random bytes, not Confluent-framed (the first byte is not the magic 0)."""
    data = _noise(rng)
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
    """A valid fill of an instrument no reference data lists and whose name does not parse:
    refused at once (a well-formed name nobody lists: ``unlisted_instrument``)."""
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


def empty(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill with no value at all."""
    return Input("fills", fill.account, b"", reason=DlqReason.EMPTY)


def header_only(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """The 5-byte frame of a good fill, no body."""
    data = c.codec.encode("fills", fill)[:5]
    return Input("fills", fill.account, data, reason=DlqReason.TRUNCATED)


def wrong_record(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """An oracle quote, framed and valid, on the fills topic."""
    quote = r.OraclePrice(source="x", underlying="BTC", price=1.0, ts=fill.ts)
    data = c.codec.encode("oracle-prices", quote)
    return Input("fills", fill.account, data, reason=DlqReason.SCHEMA_MISMATCH)


def inf_price(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill whose price is infinite."""
    data = _raw_fill(c, fill, price=float("inf"))
    return Input("fills", fill.account, data, reason=DlqReason.INVALID_VALUE)


def negative_price(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill at a negative price."""
    data = _raw_fill(c, fill, price=-fill.price)
    return Input("fills", fill.account, data, reason=DlqReason.INVALID_VALUE)


def empty_fill_id(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill whose id is empty."""
    data = _raw_fill(c, fill, fill_id="")
    return Input("fills", fill.account, data, reason=DlqReason.INVALID_VALUE)


def _bad(c: Chaos, topic: str, key: str | None, record: r.Record, reason: DlqReason) -> Input:
    """A record the codec writes (it is well formed) that the worker must refuse."""
    return Input(topic, key, c.codec.encode(topic, record), record, reason)


def _fill_with(c: Chaos, fill: r.Fill, reason: DlqReason, **changes: object) -> Input:
    """The fill with changes, keyed by its (changed) account."""
    bad = fill.model_copy(update=changes)
    return _bad(c, "fills", bad.account, bad, reason)


def null_key_fill(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A valid fill without a key."""
    return _bad(c, "fills", None, fill, DlqReason.NULL_KEY)


def key_mismatch_fill(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A valid fill keyed by another account."""
    return _bad(c, "fills", fill.account + "-other", fill, DlqReason.KEY_MISMATCH)


def expired_instrument(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill of an option that expired in 2019 (never listed, its name parses)."""
    return _fill_with(c, fill, DlqReason.EXPIRED_INSTRUMENT, instrument="BTC-27DEC19-50000-C")


def stale_1970(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill stamped at the epoch."""
    ts = datetime(1970, 1, 1, tzinfo=UTC)
    return _fill_with(c, fill, DlqReason.STALE_TIMESTAMP, ts=ts)


def stale_1938(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill stamped before the epoch (a negative Avro timestamp)."""
    ts = datetime(1938, 6, 1, tzinfo=UTC)
    return _fill_with(c, fill, DlqReason.STALE_TIMESTAMP, ts=ts)


def stale_two_days(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill two days older than the partition's event time."""
    return _fill_with(c, fill, DlqReason.STALE_TIMESTAMP, ts=fill.ts - timedelta(days=2))


def huge_price(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill at 1e30."""
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, price=1e30)


def price_times_ten(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill at ten times the mark."""
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, price=fill.price * 10)


def price_tenth(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill at a tenth of the mark."""
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, price=fill.price / 10)


def huge_qty(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill of 1e30 contracts."""
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, qty=1e30)


def notional_over_cap(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill of 20,000 BTC (2 bn USD, over the 1 bn a fill may carry)."""
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, qty=20_000.0, fee=0.0)


def fee_credit(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fee of -1e12 (a credit to the account)."""
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, fee=-1e12)


def fee_huge(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fee of 1e12."""
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, fee=1e12)


def fee_over_share(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fee of half the fill's notional."""
    fee = fill.qty * fill.price / 2
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, fee=fee)


def huge_fill_id(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill whose id is 600 KB long."""
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, fill_id="f" * 600_000)


def long_account(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill of an account whose name is 300 characters (keyed by it)."""
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, account=fill.account + "a" * 300)


def long_order_id(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill whose order id is 10,000 characters."""
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, order_id="o" * 10_000)


def long_sub_account(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill of a sub-account whose name is 1,000 characters."""
    return _fill_with(c, fill, DlqReason.OUT_OF_RANGE, sub_account="s" * 1_000)


def _transfer(fill: r.Fill, **changes: object) -> r.CollateralTransfer:
    """A deposit by the fill's account at its time, with changes."""
    values: dict[str, object] = dict(
        transfer_id=f"t-{fill.fill_id}",
        account=fill.account,
        asset="USDC",
        amount=1_000.0,
        kind="DEPOSIT",
        ts=fill.ts,
    )
    return r.CollateralTransfer.model_validate(values | changes)


def _transfer_with(c: Chaos, fill: r.Fill, reason: DlqReason, **changes: object) -> Input:
    """A deposit with changes, keyed by its account."""
    bad = _transfer(fill).model_copy(update=changes)
    return _bad(c, "collateral", bad.account, bad, reason)


def garbage_transfer(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """Random bytes on the collateral topic."""
    data = _noise(rng)
    return Input("collateral", fill.account, data, reason=DlqReason.BAD_MAGIC)


def nan_amount(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A deposit of NaN."""
    data = _raw(c, "collateral_transfer", _transfer(fill), amount=float("nan"))
    return Input("collateral", fill.account, data, reason=DlqReason.INVALID_VALUE)


def zero_amount(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A deposit of nothing."""
    data = _raw(c, "collateral_transfer", _transfer(fill), amount=0.0)
    return Input("collateral", fill.account, data, reason=DlqReason.INVALID_VALUE)


def null_key_transfer(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A valid deposit without a key."""
    return _bad(c, "collateral", None, _transfer(fill), DlqReason.NULL_KEY)


def key_mismatch_transfer(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A valid deposit keyed by another account."""
    return _bad(c, "collateral", "someone-else", _transfer(fill), DlqReason.KEY_MISMATCH)


def unknown_asset(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A deposit of 'U$DC', not a symbol."""
    return _transfer_with(c, fill, DlqReason.UNKNOWN_ASSET, asset="U$DC")


def lowercase_asset(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A deposit of 'usdc' (assets are case-sensitive)."""
    return _transfer_with(c, fill, DlqReason.UNKNOWN_ASSET, asset="usdc")


def unlisted_instrument(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A fill on DOGE-PERPETUAL, well formed but listed by nobody: held for its listing (it may
    race ahead of it), refused once the partition's event time passes ``inputs.hold_s``."""
    return _fill_with(c, fill, DlqReason.UNKNOWN_INSTRUMENT, instrument="DOGE-PERPETUAL", price=0.2)


def unpriced_asset(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A deposit of DOGE, a symbol nobody prices or lists: held, refused at its deadline."""
    return _transfer_with(c, fill, DlqReason.UNKNOWN_ASSET, asset="DOGE")


HELD = {DlqReason.UNKNOWN_INSTRUMENT, DlqReason.UNKNOWN_ASSET}
"""The reasons of inputs a partition holds before it refuses them (an offline replay holds them
too: their offsets count as handled)."""


def huge_deposit(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A deposit of 1e30 USDC."""
    return _transfer_with(c, fill, DlqReason.OUT_OF_RANGE, amount=1e30)


def long_transfer_id(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A deposit whose id is 5,000 characters."""
    return _transfer_with(c, fill, DlqReason.OUT_OF_RANGE, transfer_id="t" * 5_000)


def stale_transfer(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A deposit stamped two days before the partition's event time."""
    ts = fill.ts - timedelta(days=2)
    return _transfer_with(c, fill, DlqReason.STALE_TIMESTAMP, ts=ts)


def future_transfer(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A deposit stamped a day from now."""
    ts = datetime.now(tz=UTC).replace(microsecond=0) + timedelta(days=1)
    return _transfer_with(c, fill, DlqReason.FUTURE_TIMESTAMP, ts=ts)


def huge_quote(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A BTC quote of 1e30 from one source."""
    quote = r.OraclePrice(source="rogue", underlying="BTC", price=1e30, ts=fill.ts)
    return _bad(c, "oracle-prices", "BTC", quote, DlqReason.OUT_OF_RANGE)


def future_quote(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A BTC quote stamped a day from now."""
    ts = datetime.now(tz=UTC).replace(microsecond=0) + timedelta(days=1)
    quote = r.OraclePrice(source="deribit", underlying="BTC", price=fill.price, ts=ts)
    return _bad(c, "oracle-prices", "BTC", quote, DlqReason.FUTURE_TIMESTAMP)


def garbage_quote(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """Random bytes on the oracle topic."""
    data = _noise(rng)
    return Input("oracle-prices", "BTC", data, reason=DlqReason.BAD_MAGIC)


def expired_listing(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A listing of an option that expired in 2019."""
    listing = samples.expired_listing(fill.ts)
    return _bad(c, "instruments", listing.name, listing, DlqReason.EXPIRED_INSTRUMENT)


def unlisted_quote(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A quote of an underlying nobody lists (and no collateral of the parameters)."""
    quote = r.OraclePrice(source="deribit", underlying="DOGE", price=0.4, ts=fill.ts)
    return _bad(c, "oracle-prices", "DOGE", quote, DlqReason.UNKNOWN_UNDERLYING)


def unlisted_depth(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A book of an underlying nobody lists."""
    depth = samples.DEPTH.model_copy(update={"underlying": "XRP", "ts": fill.ts})
    return _bad(c, "book-depth", "XRP", depth, DlqReason.UNKNOWN_UNDERLYING)


def unlisted_surface(c: Chaos, fill: r.Fill, rng: random.Random) -> Input:
    """A vol surface of an underlying nobody lists."""
    vol = samples.VOL.model_copy(update={"underlying": "PEPE", "ts": fill.ts})
    return _bad(c, "vol-surfaces", "PEPE", vol, DlqReason.UNKNOWN_UNDERLYING)


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
    empty,
    header_only,
    wrong_record,
    inf_price,
    negative_price,
    empty_fill_id,
    null_key_fill,
    key_mismatch_fill,
    expired_instrument,
    stale_1970,
    stale_1938,
    stale_two_days,
    huge_price,
    price_times_ten,
    price_tenth,
    huge_qty,
    notional_over_cap,
    fee_credit,
    fee_huge,
    fee_over_share,
    huge_fill_id,
    long_account,
    long_order_id,
    long_sub_account,
    garbage_transfer,
    nan_amount,
    zero_amount,
    null_key_transfer,
    key_mismatch_transfer,
    unknown_asset,
    lowercase_asset,
    unlisted_instrument,
    unpriced_asset,
    huge_deposit,
    long_transfer_id,
    stale_transfer,
    future_transfer,
    huge_quote,
    future_quote,
    garbage_quote,
    expired_listing,
    unlisted_quote,
    unlisted_depth,
    unlisted_surface,
)
"""Every kind of bad record but the duplicates (``duplicate``: a good fill again)."""


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
