"""The market agent's state: validated marks, EWMA vols, depth, surfaces, instruments, params.

It takes decoded input records and returns the market updates to broadcast (None when an input
is dropped or conflated), and builds the engine's MarketSnapshot. Stablecoins and the settlement
currency are collateral assets priced by the oracle (the settlement currency at 1); every other
oracle-priced name is an underlying.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from engine.dynamic import PsrTracker
from engine.instruments import Instrument, InstrumentTable
from engine.market import AssetMarket, DepthCurve, MarketSnapshot, UnderlyingMarket, VolSurface
from engine.oracle import MarkOracle, SourceQuote
from engine.params import AssetClass, RiskParams
from engine.volatility import EwmaVolatility
from streams.errors import InputRejected, StreamError
from streams.records import (
    BookDepth,
    DlqReason,
    InstrumentRecord,
    InstrumentState,
    MarketUpdate,
    MarketUpdateKind,
    OraclePrice,
    RiskParamsRecord,
    VolSurfaceRecord,
)


def epoch(ts: datetime) -> float:
    """Epoch seconds of an aware datetime."""
    return ts.timestamp()


def update_origin(update_id: str) -> tuple[str, int] | None:
    """The market input a broadcast came from, as ('topic:partition', offset), from its update id
    'topic:partition:offset' (None for an id of another form)."""
    source, _, offset = update_id.rpartition(":")
    if not source or ":" not in source or not offset.isdigit():
        return None
    return source, int(offset)


def instrument_of(record: InstrumentRecord) -> Instrument:
    """Engine reference data from an instrument record."""
    return Instrument(
        record.name,
        record.kind,
        record.underlying,
        None if record.expiry is None else epoch(record.expiry),
        record.strike,
        record.option_type,
        record.contract_size,
        record.inverse,
    )


class StaleParams(StreamError, ValueError):
    """A parameter set whose version is not newer than one of the same name already applied:
    versions only move forward (the dlq's STALE_PARAMS)."""


def check_params(record: RiskParamsRecord, params: RiskParams) -> None:
    """ValueError (BAD_PARAMS) when a record's name or version differs from its JSON's."""
    if (record.name, record.version) != (params.name, params.version):
        raise ValueError(
            f"the record names {record.name}@{record.version} but its parameters are "
            f"{params.name}@{params.version}"
        )


@dataclass
class MarketState:
    """Everything the market agent knows; applies inputs, conflates, builds snapshots."""

    params: RiskParams = field(default_factory=RiskParams)
    oracle: MarkOracle | None = None
    ewma: dict[str, EwmaVolatility] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)
    depth: dict[str, DepthCurve] = field(default_factory=dict)
    vols: dict[str, VolSurface] = field(default_factory=dict)
    instruments: InstrumentTable = field(default_factory=InstrumentTable)
    forwarded: dict[str, tuple[float, float]] = field(default_factory=dict)
    as_of: float = 0.0
    seq: int = 0
    psr: PsrTracker = field(default_factory=PsrTracker)
    param_versions: dict[str, int] = field(default_factory=dict)
    """The newest version applied of each parameter set name (the set in force included)."""
    expired: set[str] = field(default_factory=set)
    """Instruments past their expiry (EXPIRED or SETTLED): no fill is taken on them any more."""
    settled: dict[str, float] = field(default_factory=dict)
    """Each settled instrument's delivery price: its positions are closed at it."""
    listed_as_of: float = 0.0
    """Event time of the newest listing (INSTRUMENT update) applied: the instruments' clock."""
    marked_as_of: float = 0.0
    """Event time of the newest mark applied: the prices' clock."""
    origins: dict[str, int] = field(default_factory=dict)
    """The last market input applied from each of its topic partitions ('topic:partition' ->
    offset), from the broadcasts' update ids: a re-broadcast is applied once (``first_time``)."""
    set_aside: tuple[str, str] | None = None
    """(underlying, source) of the last quote taken when the oracle set it aside as an outlier
    (None when it was used): the market agent counts it."""

    def __post_init__(self) -> None:
        if self.oracle is None:
            self.oracle = MarkOracle(self.params.oracle)

    def _update(self, kind: MarketUpdateKind, ts: datetime, uid: str, **kw: object) -> MarketUpdate:
        """A numbered market update."""
        self.seq += 1
        return MarketUpdate(update_id=uid, kind=kind, seq=self.seq, ts=ts, **kw)

    def on_price(self, price: OraclePrice, uid: str) -> MarketUpdate | None:
        """An oracle quote: a MARK update when the mark moved enough or enough time passed."""
        assert self.oracle is not None
        self._check_quote(price)
        now = epoch(price.ts)
        quote = SourceQuote(price.source, price.price, price.weight, now)
        if not self.oracle.update(price.underlying, quote):
            return None
        self.as_of = max(self.as_of, now)
        result = self.oracle.mark(price.underlying, now)
        self.set_aside = None
        if result is not None and price.source not in result.sources_used:
            self.set_aside = (price.underlying, price.source)
        if result is None:
            return None
        return self._apply_mark(price.underlying, result.mark, result.stale, now, price.ts, uid)

    def _check_quote(self, price: OraclePrice) -> None:
        """A quote at most ``inputs.max_price_usd`` (OUT_OF_RANGE). Nearer figures are the
        oracle's to judge: a source far from its peers is set aside as an outlier, and a mark
        needs ``oracle.min_sources`` agreeing sources, so a crash is followed, one wild source
        is not."""
        cap = self.params.inputs.max_price_usd
        if price.price > cap:
            raise InputRejected(
                DlqReason.OUT_OF_RANGE,
                f"{price.underlying} quote {price.price:g} from {price.source}: above {cap:g} USD",
            )

    def _apply_mark(
        self, underlying: str, mark: float, stale: bool, now: float, ts: datetime, uid: str
    ) -> MarketUpdate | None:
        """Record a validated mark; forward it unless conflated."""
        was_stale = underlying in self.stale
        (self.stale.add if stale else self.stale.discard)(underlying)
        if not stale:
            vol = self.ewma.get(underlying)
            if vol is None:
                floor = self.params.shortfall.floor_for(underlying)
                vol = EwmaVolatility.seeded(self.params.shortfall.ewma_lambda, floor)
                self.ewma[underlying] = vol
            vol.update(mark, now)
        self.marks[underlying] = mark
        last = self.forwarded.get(underlying)
        conf = self.params.conflation
        if last is not None and stale == was_stale:
            moved_bps = abs(mark / last[0] - 1.0) * 1e4
            if moved_bps < conf.min_move_bps and (now - last[1]) * 1e3 < conf.max_interval_ms:
                return None
        self.forwarded[underlying] = (mark, now)
        ewma = self.ewma.get(underlying)
        annual = ewma.annualised() if ewma else None
        return self._update(
            MarketUpdateKind.MARK,
            ts,
            uid,
            underlying=underlying,
            mark=mark,
            stale=stale,
            ewma_vol=annual if annual and annual > 0 else None,
        )

    def on_depth(self, record: BookDepth, uid: str) -> MarketUpdate:
        """A new depth curve."""
        self.depth[record.underlying] = DepthCurve(
            np.array(record.bps), np.array(record.bid), np.array(record.ask)
        )
        self.as_of = max(self.as_of, epoch(record.ts))
        return self._update(
            MarketUpdateKind.DEPTH, record.ts, uid, underlying=record.underlying, depth=record
        )

    def on_vol(self, record: VolSurfaceRecord, uid: str) -> MarketUpdate:
        """A new vol surface."""
        self.vols[record.underlying] = VolSurface(
            np.array(record.expiries), np.array(record.log_moneyness), np.array(record.vols)
        )
        self.as_of = max(self.as_of, epoch(record.ts))
        return self._update(
            MarketUpdateKind.VOL, record.ts, uid, underlying=record.underlying, vol=record
        )

    def on_instrument(self, record: InstrumentRecord, uid: str) -> MarketUpdate:
        """Reference data or a change of an instrument's state, checked (``check_instrument``)
        and taken."""
        self.check_instrument(record)
        self.take_instrument(record)
        return self._update(
            MarketUpdateKind.INSTRUMENT,
            record.ts,
            uid,
            underlying=record.underlying,
            instrument=record,
        )

    def check_instrument(self, record: InstrumentRecord) -> None:
        """A listing must not be expired when sent, nor of a settled instrument
        (EXPIRED_INSTRUMENT); an expiry or a settlement comes at or after the expiry
        (INVALID_VALUE), a settlement once at one price (INVALID_VALUE) within the price band
        of the underlying's mark (OUT_OF_RANGE)."""
        name, ts = record.name, epoch(record.ts)
        expiry = None if record.expiry is None else epoch(record.expiry)
        if record.state is InstrumentState.LISTED:
            if name in self.settled or (expiry is not None and expiry <= ts):
                raise InputRejected(
                    DlqReason.EXPIRED_INSTRUMENT,
                    f"{name} is listed at {record.ts.isoformat()}, after its expiry",
                )
            return
        if expiry is None or ts < expiry:
            raise InputRejected(
                DlqReason.INVALID_VALUE,
                f"{name} is {record.state.value} at {record.ts.isoformat()}, before its expiry",
            )
        price = record.settlement_price
        if price is None:
            return
        earlier = self.settled.get(name)
        if earlier is not None and earlier != price:
            raise InputRejected(
                DlqReason.INVALID_VALUE, f"{name} was settled at {earlier:g}, not {price:g}"
            )
        mark = self.marks.get(record.underlying)
        ratio = self.params.inputs.price_ratio(record.underlying)
        if mark is not None and not mark / ratio <= price <= mark * ratio:
            raise InputRejected(
                DlqReason.OUT_OF_RANGE,
                f"{name} settlement price {price:g} beyond {ratio:g} times or a {ratio:g}th of "
                f"the {record.underlying} mark {mark:g}",
            )

    def take_instrument(self, record: InstrumentRecord) -> None:
        """Register the reference data and the instrument's state (unchecked: the broadcast's
        side takes what the market agent accepted)."""
        self.instruments.add(instrument_of(record))
        if record.state is not InstrumentState.LISTED:
            self.expired.add(record.name)
        if record.settlement_price is not None:
            self.settled[record.name] = record.settlement_price

    def on_params(self, record: RiskParamsRecord, uid: str) -> MarketUpdate:
        """A new parameter set, governed: pydantic.ValidationError when invalid, ValueError when
        its record and its JSON disagree on name or version, StaleParams when its version is
        not newer than the newest applied of its name."""
        params = RiskParams.from_json(record.params_json)
        check_params(record, params)
        newest = self.newest_version(params.name)
        if params.version <= newest:
            raise StaleParams(
                f"{params.name}@{params.version} is not newer than {params.name}@{newest}, "
                f"already applied; {self.params.name}@{self.params.version} stays in force"
            )
        self.use_params(params)
        return self._update(MarketUpdateKind.PARAMS, record.ts, uid, params=record)

    def newest_version(self, name: str) -> int:
        """The newest version of a set name applied here (0: none)."""
        if name == self.params.name:
            return max(self.param_versions.get(name, 0), self.params.version)
        return self.param_versions.get(name, 0)

    def use_params(self, params: RiskParams) -> None:
        """Put a parameter set in force and remember its version."""
        self.params = params
        self.param_versions[params.name] = max(
            self.param_versions.get(params.name, 0), params.version
        )
        assert self.oracle is not None
        self.oracle.params = params.oracle

    def stale_at(self, ts: float) -> set[str]:
        """The names STALE for an input stamped ``ts``: the oracle's STALE marks, or every mark
        when the partition's market is more than ``status.max_market_lag_s`` behind the input
        (the broadcast lags: the marks may be old)."""
        lag = self.params.status.max_market_lag_s
        if self.as_of > 0.0 and ts - self.as_of > lag:
            return set(self.marks)
        return self.stale

    def first_time(self, update: MarketUpdate) -> bool:
        """False for a broadcast whose market input (its update id, 'topic:partition:offset')
        was applied here already: a market agent that reads its inputs again after a crash or a
        takeover broadcasts them again, and a partition must apply each input once, with the
        outputs (and output ids) it gave the first time."""
        origin = update_origin(update.update_id)
        if origin is None:
            return True
        source, offset = origin
        if offset <= self.origins.get(source, -1):
            return False
        self.origins[source] = offset
        return True

    def apply(self, update: MarketUpdate) -> None:
        """Apply a broadcast update (the account partitions' side of the market)."""
        self.seq = max(self.seq, update.seq)
        self.as_of = max(self.as_of, epoch(update.ts))
        kind, und = update.kind, update.underlying
        if kind is MarketUpdateKind.MARK:
            self.marked_as_of = max(self.marked_as_of, epoch(update.ts))
        elif kind is MarketUpdateKind.INSTRUMENT:
            self.listed_as_of = max(self.listed_as_of, epoch(update.ts))
        if kind is MarketUpdateKind.MARK and und and update.mark:
            self.marks[und] = update.mark
            (self.stale.add if update.stale else self.stale.discard)(und)
            if update.ewma_vol:
                vol = self.ewma.setdefault(und, EwmaVolatility(self.params.shortfall.ewma_lambda))
                vol.daily_var = update.ewma_vol**2 / 365.0
            if not self.is_asset_only(und):
                self.psr.update(und, update.ewma_vol, epoch(update.ts), self.params)
        elif kind is MarketUpdateKind.DEPTH and update.depth:
            self.on_depth(update.depth, update.update_id)
        elif kind is MarketUpdateKind.VOL and update.vol:
            self.on_vol(update.vol, update.update_id)
        elif kind is MarketUpdateKind.INSTRUMENT and update.instrument:
            self.take_instrument(update.instrument)
        elif kind is MarketUpdateKind.PARAMS and update.params:
            try:
                self.on_params(update.params, update.update_id)
            except ValueError:  # a set the market agent should not have broadcast
                return  # (one validated before a restart lost its versions): never applied
            self.refresh_psr()

    def refresh_psr(self) -> None:
        """Recompute every tracked effective PSR under the current parameters (new base PSR)."""
        for und in list(self.psr.state):
            ewma = self.ewma.get(und)
            self.psr.update(und, ewma.annualised() if ewma else None, self.as_of, self.params)

    def is_asset_only(self, name: str) -> bool:
        """Stablecoins and the settlement currency are assets, not underlyings."""
        return name in self.params.stablecoins or name == self.params.settlement_currency

    def snapshot(self) -> MarketSnapshot:
        """The engine's view of the market now."""
        unds: dict[str, UnderlyingMarket] = {}
        assets: dict[str, AssetMarket] = {}
        for name, mark in self.marks.items():
            if self.is_asset_only(name):
                assets[name] = AssetMarket(mark, AssetClass.STABLECOIN)
                continue
            ewma = self.ewma.get(name)
            annual = ewma.annualised() if ewma else None
            unds[name] = UnderlyingMarket(
                mark,
                AssetClass.MAJOR if name in self.params.majors else AssetClass.MID_CAP,
                0.0,
                annual if annual and annual > 0 else None,
                self.vols.get(name),
                self.depth.get(name),
            )
        return MarketSnapshot(self.as_of, unds, assets, {})

    @staticmethod
    def now_utc() -> datetime:
        """Wall-clock now (UTC)."""
        return datetime.now(tz=UTC)


def _instrument_rows(state: MarketState) -> list[list[object]]:
    """The instrument list as plain rows."""
    return [
        [
            i.name,
            i.kind.value,
            i.underlying,
            i.expiry,
            i.strike,
            i.option_type.value if i.option_type else None,
            i.contract_size,
            i.inverse,
        ]
        for i in state.instruments.instruments
    ]


MARKET_FIELDS: dict[str, Callable[[MarketState], object]] = {
    "params": lambda s: s.params.to_json(),
    "param_versions": lambda s: s.param_versions,
    "marks": lambda s: s.marks,
    "stale": lambda s: sorted(s.stale),
    "ewma": lambda s: {u: [v.last_price, v.last_ts, v.daily_var] for u, v in s.ewma.items()},
    "depth": lambda s: {
        u: [d.bps.tolist(), d.bid.tolist(), d.ask.tolist()] for u, d in s.depth.items()
    },
    "vols": lambda s: {
        u: [v.expiries.tolist(), v.log_moneyness.tolist(), v.vols.tolist()]
        for u, v in s.vols.items()
    },
    "instruments": _instrument_rows,
    "expired": lambda s: sorted(s.expired),
    "settled": lambda s: s.settled,
    "as_of": lambda s: s.as_of,
    "origins": lambda s: s.origins,
    "clocks": lambda s: [s.listed_as_of, s.marked_as_of],
    "seq": lambda s: s.seq,
    "psr": lambda s: s.psr.to_dict(),
}
"""How each field of a market state becomes plain data (market_to_dict)."""


def market_to_dict(state: MarketState, fields: Iterable[str] | None = None) -> dict[str, object]:
    """A market state as plain data (a table value), enough to rebuild the account side; some
    of its fields only when asked (streams/market/table.py writes it in parts)."""
    names = MARKET_FIELDS if fields is None else fields
    return {name: MARKET_FIELDS[name](state) for name in names}


def market_from_dict(data: Mapping[str, Any]) -> MarketState:
    """Inverse of market_to_dict (its JSON read back from the table: values as JSON gives them)."""
    from engine.instruments import InstrumentKind, OptionType

    params = RiskParams.from_json(str(data["params"]))
    state = MarketState(params)
    state.marks = dict(data["marks"])
    state.stale = set(data["stale"])
    for u, (price, ts, var) in dict(data["ewma"]).items():
        state.ewma[u] = EwmaVolatility(params.shortfall.ewma_lambda, price, ts, var)
    for u, (bps, bid, ask) in dict(data["depth"]).items():
        state.depth[u] = DepthCurve(np.array(bps), np.array(bid), np.array(ask))
    for u, (exp, k, vols) in dict(data["vols"]).items():
        state.vols[u] = VolSurface(np.array(exp), np.array(k), np.array(vols))
    for name, kind, und, expiry, strike, opt, size, inverse in data["instruments"]:
        state.instruments.add(
            Instrument(
                name,
                InstrumentKind(kind),
                und,
                expiry,
                strike,
                OptionType(opt) if opt else None,
                size,
                inverse,
            )
        )
    state.expired = set(data.get("expired", ()))  # absent from a table of before lifecycles
    state.settled = {str(k): float(v) for k, v in dict(data.get("settled", {})).items()}
    state.as_of = float(data["as_of"])
    state.origins = {str(k): int(v) for k, v in dict(data.get("origins", {})).items()}
    state.listed_as_of, state.marked_as_of = (float(t) for t in data.get("clocks", (0.0, 0.0)))
    state.seq = int(data["seq"])
    state.psr = PsrTracker.from_dict(data.get("psr"))
    # a table from before versions were kept: the set in force is the newest of its name
    versions = data.get("param_versions", {params.name: params.version})
    state.param_versions = {str(k): int(v) for k, v in dict(versions).items()}
    return state


def underlying_to_dict(state: MarketState, underlying: str) -> dict[str, object]:
    """What the market agent knows of one underlying from its quotes, as plain data (a table
    value keyed by the underlying): each source's latest quote, the last good mark, the mark and
    its STALE flag, the EWMA estimator and the last mark forwarded (conflation). A worker that
    takes the underlying over after a crash or a rebalance goes on from here, so its marks,
    volatilities and conflation are the ones the previous owner would have produced."""
    assert state.oracle is not None
    quotes = state.oracle.quotes.get(underlying, {})
    ewma = state.ewma.get(underlying)
    forwarded = state.forwarded.get(underlying)
    return {
        "quotes": {s: [q.price, q.weight, q.ts] for s, q in quotes.items()},
        "last_mark": state.oracle.last_marks.get(underlying),
        "mark": state.marks.get(underlying),
        "stale": underlying in state.stale,
        "ewma": [ewma.last_price, ewma.last_ts, ewma.daily_var, ewma.weight] if ewma else None,
        "forwarded": list(forwarded) if forwarded else None,
    }


def load_underlying(state: MarketState, underlying: str, data: Mapping[str, Any]) -> None:
    """Put one underlying's state (``underlying_to_dict``) back into a market state."""
    assert state.oracle is not None
    state.oracle.quotes[underlying] = {
        str(s): SourceQuote(str(s), float(p), float(w), float(ts))
        for s, (p, w, ts) in data["quotes"].items()
    }
    if data["last_mark"] is not None:
        state.oracle.last_marks[underlying] = float(data["last_mark"])
    if data["mark"] is not None:
        state.marks[underlying] = float(data["mark"])
    (state.stale.add if data["stale"] else state.stale.discard)(underlying)
    if data["ewma"] is not None:
        price, ts, var, weight = data["ewma"]
        lam = state.params.shortfall.ewma_lambda
        state.ewma[underlying] = EwmaVolatility(lam, price, ts, var, weight)
    if data["forwarded"] is not None:
        mark, ts = data["forwarded"]
        state.forwarded[underlying] = (float(mark), float(ts))
