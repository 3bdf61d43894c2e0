"""The account partitions a worker holds, against the portfolio table: each partition's
processor rebuilt from the table the first time it is needed, with its outbox and its cursor;
changed records and market state written back; everything of a partition dropped when it is
revoked (its state lives on in the table)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson

from infra.settings import Settings
from streams.accounts.cursor import CURSOR_KEY, Cursor
from streams.accounts.outbox import Outbox
from streams.accounts.outputs import InputRef
from streams.accounts.portfolio import PortfolioRecord
from streams.accounts.processor import AccountProcessor
from streams.accounts.proofs import publisher
from streams.market.state import MarketState, market_from_dict
from streams.market.table import MarketTable, load_market
from streams.records import MarketUpdateKind
from streams.topics.catalog import Topic

log = logging.getLogger("spma")


class Partitions:
    """The processors, outbox and cursor of the account partitions this worker holds."""

    def __init__(self, settings: Settings, table: Any) -> None:
        self.settings = settings
        self.table = table
        self.processors: dict[int, AccountProcessor] = {}
        self.market_table = MarketTable(table)
        self.outbox = Outbox()
        self.cursor = Cursor()

    def processor(self, partition: int) -> AccountProcessor:
        """The partition's processor, rebuilt from the table the first time it is needed."""
        proc = self.processors.get(partition)
        if proc is not None:
            return proc
        state = load_market(self.table, partition)
        market = market_from_dict(state) if state else MarketState()
        self.outbox.load(partition, state)
        proc = AccountProcessor(partition, market)
        proc.candidates_ts = state.get("candidates_ts") if state else None  # not sent again
        proc.prover = publisher(self.settings)
        records = self.records_of(partition)
        proc.load(records)
        self.load_cursor(partition, records.values())
        self.processors[partition] = proc
        log.info("partition %s: rebuilt %s accounts", partition, len(records))
        return proc

    def admit(self, ref: InputRef) -> tuple[AccountProcessor, int | None]:
        """An input's partition processor (loaded with its progress from the table: a partition
        just assigned must not look empty) and the first offset of a hole before the input, if
        the consumer skipped records; without a hole the input counts as handled in order."""
        proc = self.processor(ref.partition)
        want = self.cursor.check(ref.topic, ref.partition, ref.offset)
        if want is None:
            self.cursor.handled(ref.topic, ref.partition, ref.offset)
        return proc, want

    def records_of(self, partition: int) -> dict[str, PortfolioRecord]:
        """The portfolio records of one partition in the table."""
        records = {}
        for key, value in list(self.table.items()):
            if value is None or key.startswith("\x00"):
                continue
            record = PortfolioRecord.from_json(value)
            if record.partition == partition:
                records[key] = record
        return records

    def load_cursor(self, partition: int, records: Iterable[PortfolioRecord]) -> None:
        """How far the table says the partition's inputs were handled: the offsets its records
        applied, the market updates applied and the inputs rejected."""
        handled: dict[str, int] = {}
        for record in records:
            for topic, offset in record.offsets.items():
                handled[topic] = max(handled.get(topic, -1), offset)
        market = self.outbox.applied.get(partition, -1)
        if market >= 0:
            handled[self.settings.account_topic(Topic.MARKET_BROADCAST)] = market
        self.cursor.load(partition, handled)
        raw = self.table.get(CURSOR_KEY.format(partition=partition))
        self.cursor.load_rejected(partition, orjson.loads(raw) if raw else {})

    def save(
        self,
        proc: AccountProcessor,
        accounts: set[str],
        market: bool,
        kinds: Iterable[MarketUpdateKind] = (),
    ) -> None:
        """Write changed records (and the partition's market state: the parts that the update
        kinds changed, streams/market/table.py) to the table."""
        for account in accounts:
            self.table[account] = proc.records[account].to_json()
        if market:
            extra = self.outbox.dump(proc.partition) | {"candidates_ts": proc.candidates_ts}
            self.market_table.save(proc.partition, proc.market, extra, kinds)

    def save_rejected(self, topic: str, partition: int, offset: int) -> None:
        """Record a rejected input in the cursor and its table entry."""
        handled = self.cursor.reject(topic, partition, offset)
        self.table[CURSOR_KEY.format(partition=partition)] = orjson.dumps(handled)

    def forget(self, partitions: set[int]) -> None:
        """Drop processors of revoked partitions (their state lives on in the table)."""
        for partition in partitions:
            self.processors.pop(partition, None)
        self.outbox.reset(partitions)
        self.cursor.reset(partitions)
        self.market_table.forget(partitions)
