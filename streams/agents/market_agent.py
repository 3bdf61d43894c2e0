"""The market agent: oracle prices, book depth, vol surfaces, instruments and risk parameters,
validated against the market state and, when accepted, broadcast to every account partition.

Market inputs are partitioned by underlying, so each source of an underlying meets its peers.
The parameter set in force and the newest version of each set name live in their own table
(risk-params-state), so that a restarted worker refuses a stale version as its predecessor would.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from engine.params import RiskParams
from infra.settings import Settings
from streams.agents.clock import Clock
from streams.agents.listing_view import ListingView
from streams.agents.metrics import WorkerMetrics
from streams.agents.recovery import RecoveryCheck
from streams.codec import AvroCodec
from streams.errors import InputRejected
from streams.market.state import (
    MarketState,
    StaleParams,
    load_underlying,
    underlying_to_dict,
)
from streams.records import (
    BookDepth,
    DlqReason,
    InstrumentRecord,
    MarketUpdate,
    OraclePrice,
    RiskParamsRecord,
    VolSurfaceRecord,
)
from streams.topics.catalog import Topic

MarketRecord = OraclePrice | BookDepth | VolSurfaceRecord | InstrumentRecord | RiskParamsRecord
"""A record of the market agent's topics."""

PARAMS_KEY = "in-force"
"""The market agent's parameter set and versions in its table (risk-params-state)."""


@dataclass(frozen=True)
class ParamsInForce:
    """The params table's value: the set in force and the newest version seen of each name."""

    params: RiskParams
    versions: dict[str, int]

    def to_json(self) -> bytes:
        """The table value."""
        return orjson.dumps({"params": self.params.to_json(), "versions": self.versions})

    @classmethod
    def from_json(cls, raw: bytes | str) -> ParamsInForce:
        """Inverse of to_json."""
        data = orjson.loads(raw)
        versions = {str(k): int(v) for k, v in data["versions"].items()}
        return cls(RiskParams.from_json(data["params"]), versions)


class MarketAgent:
    """Validates market inputs and broadcasts accepted updates."""

    def __init__(
        self,
        settings: Settings,
        codec: AvroCodec,
        market: MarketState,
        params_table: Any,
        quotes_table: Any,
        broadcast: Any,
        metrics: WorkerMetrics,
        clock: Clock,
        listings: ListingView,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.market = market
        self.params_table = params_table
        self.quotes_table = quotes_table  # each underlying's oracle and EWMA state
        self.restored: set[str] = set()  # underlyings read back from it since the assignment
        self.broadcast = broadcast
        self.metrics = metrics
        self.clock = clock
        self.params_restored = False  # the set in force, read from its table once an assignment
        self.listings = listings  # the underlyings someone lists
        catchup = metrics.catchup  # each table checked against its changelog before it is read
        self.quotes_check = RecoveryCheck(
            settings, quotes_table, catchup.labels("market-quotes-state")
        )
        self.params_check = RecoveryCheck(
            settings, params_table, catchup.labels("risk-params-state")
        )
        self.prices_topic = settings.topic(Topic.ORACLE_PRICES)

    async def on_input(self, event: Any) -> str:
        """Validate a market input and broadcast the accepted update to every partition; the
        outcome ('applied', or 'conflated' when nothing is broadcast)."""
        msg = event.message
        topic = self.settings.logical_topic(msg.topic)
        value = self.codec.decode(topic, msg.value)
        assert isinstance(value, MarketRecord)  # the codec gives a market topic's records only
        self.clock.check(value.ts, self.market.params.status.future_ts_tolerance_s)
        self.metrics.event_time(topic, value.ts.timestamp())
        if isinstance(value, RiskParamsRecord):
            await self.restore_params()
        if isinstance(value, OraclePrice | BookDepth | VolSurfaceRecord):
            await self.listings.check(value.underlying, self.market.params)
        if isinstance(value, OraclePrice):
            await self.restore_underlying(value.underlying, msg.partition)
        update = self.apply(value, f"{msg.topic}:{msg.partition}:{msg.offset}", topic)
        if update is not None:
            await self.send(update)
            if isinstance(value, OraclePrice | RiskParamsRecord):  # a table write follows
                await self.broadcast.app.producer.flush()
        self.persist(value, update)
        return "conflated" if update is None else "applied"

    def persist(self, value: MarketRecord, update: MarketUpdate | None) -> None:
        """Write what the input changed to the agent's tables, after its broadcast is
        acknowledged: a crash in between leaves the tables behind, so the input is read again
        and broadcast again under the same update id, which every partition applies once
        (``MarketState.first_time``); tables ahead of a lost broadcast would drop it for good."""
        if isinstance(value, OraclePrice):
            underlying = value.underlying
            self.quotes_table[underlying] = orjson.dumps(
                underlying_to_dict(self.market, underlying)
            )
        elif isinstance(value, RiskParamsRecord) and update is not None:
            self.save_params()

    def apply(self, value: MarketRecord, uid: str, topic: str) -> MarketUpdate | None:
        """The market state's verdict on an input: the update to broadcast, None when it is
        conflated, InputRejected with the reason when it is refused."""
        try:
            return self.dispatch(value, uid)
        except StaleParams as exc:
            raise InputRejected(DlqReason.STALE_PARAMS, str(exc)[:500]) from None
        except (ValidationError, ValueError) as exc:
            reason = DlqReason.BAD_PARAMS if topic == Topic.RISK_PARAMS else DlqReason.INVALID_VALUE
            raise InputRejected(reason, str(exc)[:500]) from None

    def dispatch(self, value: MarketRecord, uid: str) -> MarketUpdate | None:
        """The market state's handler of the record's kind."""
        match value:
            case OraclePrice():
                return self.on_price(value, uid)
            case BookDepth():
                return self.market.on_depth(value, uid)
            case VolSurfaceRecord():
                return self.market.on_vol(value, uid)
            case InstrumentRecord():
                update = self.market.on_instrument(value, uid)
                self.listings.take(value)
                return update
            case RiskParamsRecord():
                return self.market.on_params(value, uid)

    async def restore_underlying(self, underlying: str, partition: int) -> None:
        """An underlying's oracle and EWMA state read back from the table (once after an
        assignment, the table's partitions checked against their changelog first) and written
        back once broadcast (``persist``): a restart or a takeover changes no mark, volatility or
        conflation."""
        if underlying in self.restored:
            return
        actives = self.broadcast.app.assignor.assigned_actives()
        held = {tp.partition for tp in actives if tp.topic == self.prices_topic}
        await asyncio.to_thread(self.quotes_check.ensure, partition, held)  # off the loop
        raw = self.quotes_table.get(underlying)
        if raw:
            load_underlying(self.market, underlying, orjson.loads(raw))
        self.restored.add(underlying)

    def on_price(self, price: OraclePrice, uid: str) -> MarketUpdate | None:
        """A quote through the oracle (its underlying's state restored: ``restore_underlying``),
        an outlier set aside counted by source."""
        update = self.market.on_price(price, uid)
        if self.market.set_aside is not None:
            self.metrics.set_aside(*self.market.set_aside)
        return update

    def reset(self) -> None:
        """After a rebalance: the parameters and every underlying are read back again."""
        self.params_restored = False
        self.restored.clear()
        self.quotes_check.forget(set(self.quotes_check.checked))
        self.params_check.forget({0})

    async def send(self, update: MarketUpdate) -> None:
        """Broadcast an accepted update to every account partition."""
        data = self.codec.encode(Topic.MARKET_BROADCAST, update)
        key = (update.underlying or "").encode()
        partitions = self.settings.layout_partitions  # the generation's account partitions
        for partition in range(partitions):
            await self.broadcast.send(key=key, value=data, partition=partition)
        self.metrics.sent(Topic.MARKET_BROADCAST, partitions)

    async def restore_params(self) -> None:
        """Put the set in force and the newest version of each set name back into the market
        agent's state from its table, once after an assignment (a restarted worker must refuse
        a stale version as its predecessor would have)."""
        if self.params_restored:
            return
        await asyncio.to_thread(self.params_check.ensure, 0)
        raw = self.params_table.get(PARAMS_KEY)
        if raw:
            saved = ParamsInForce.from_json(raw)
            self.market.use_params(saved.params)
            for name, version in saved.versions.items():
                known = self.market.param_versions.get(name, 0)
                self.market.param_versions[name] = max(known, version)
        self.params_restored = True

    def save_params(self) -> None:
        """Write the market agent's set in force and versions seen to its table (partition 0,
        the risk-params topic's only one)."""
        value = ParamsInForce(self.market.params, dict(self.market.param_versions))
        self.params_table[PARAMS_KEY] = value.to_json()
