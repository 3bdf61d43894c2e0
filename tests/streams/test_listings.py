"""Which underlyings the market agent takes market data of (streams/market/listings.py), and its
view of the whole instruments topic on a real broker (streams/agents/listing_view.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from engine.params import InputParams, RiskParams
from infra.settings import Settings
from schemas import SCHEMAS_DIR
from streams import records as r
from streams.agents.listing_view import REREAD_S, ListingView
from streams.codec import AvroCodec, FolderRegistry
from streams.errors import InputRejected
from streams.kafka_io import TopicFollower, flush, make_producer, produce
from streams.market.listings import Listings, lists
from streams.topics.admin import create_topics
from tests.streams import samples

T0 = datetime(2026, 11, 24, 8, tzinfo=UTC)


def _listing(name: str, underlying: str, **kw: object) -> r.InstrumentRecord:
    """A perpetual listing at T0 (kind and fields overridable)."""
    fields: dict[str, object] = {"name": name, "kind": "PERPETUAL", "underlying": underlying}
    return r.InstrumentRecord.model_validate({**fields, "ts": T0, **kw})


def test_a_listing_before_its_expiry_lists_its_underlying() -> None:
    assert lists(_listing("SOL-PERPETUAL", "SOL"))
    future = T0 + timedelta(days=30)
    assert lists(_listing("SOL-24DEC26", "SOL", kind="FUTURE", expiry=future))
    assert lists(samples.INSTRUMENT)  # a settlement of an option listed before


def test_a_listing_sent_after_its_expiry_lists_nothing() -> None:
    assert not lists(samples.expired_listing(T0))  # an option that expired in 2019


def test_known_underlyings_are_the_listed_ones_and_the_parameters_collateral() -> None:
    book, params = Listings(), RiskParams()
    book.take(_listing("SOL-PERPETUAL", "SOL"))
    book.take(samples.expired_listing(T0))
    assert book.knows("SOL", params)
    assert not book.knows(samples.expired_listing(T0).underlying, params)
    assert book.knows("USDC", params) and book.knows("USD", params)  # stablecoin, settlement
    assert not book.knows("DOGE", params)
    doge = params.model_copy(update={"inputs": InputParams(collateral_assets=["DOGE"])})
    assert book.knows("DOGE", doge)


@pytest.mark.broker
def test_the_view_reads_listings_from_every_partition_as_they_come(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=4)
    create_topics(settings, timeout_s=30)
    codec = AvroCodec(FolderRegistry(SCHEMAS_DIR))
    view, params = ListingView(settings, codec), RiskParams()
    producer = make_producer(settings)
    names = ["SOL", "AVAX", "LINK", "ARB", "OP", "SUI"]  # keys spread over the 4 partitions
    for und in names:
        produce(
            producer,
            codec,
            settings,
            "instruments",
            f"{und}-PERPETUAL",
            _listing(f"{und}-PERPETUAL", und),
        )
    flush(producer)

    async def check(und: str) -> str | None:
        try:
            await view.check(und, params)
        except InputRejected as exc:
            return exc.reason
        return None

    try:
        assert [asyncio.run(check(und)) for und in names] == [None] * len(names)
        assert asyncio.run(check("DOGE")) == r.DlqReason.UNKNOWN_UNDERLYING
        assert asyncio.run(check("USDT")) is None  # a stablecoin: no listing needed
        produce(
            producer,
            codec,
            settings,
            "instruments",
            "DOGE-PERPETUAL",
            _listing("DOGE-PERPETUAL", "DOGE"),
        )
        flush(producer)
        time.sleep(REREAD_S)  # the topic is read again at most this often
        assert asyncio.run(check("DOGE")) is None  # listed since: read on to the new end
        assert view.follower.read_new() == []  # no end moved: nothing read
    finally:
        view.follower.close()


@pytest.mark.broker
def test_the_follower_reads_each_record_once(kafka_bootstrap: str, unique_prefix: str) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=3)
    create_topics(settings, timeout_s=30)
    codec = AvroCodec(FolderRegistry(SCHEMAS_DIR))
    producer = make_producer(settings)
    follower = TopicFollower(settings, settings.topic("instruments"))
    try:
        assert follower.read_new() == []
        for i in range(30):
            produce(producer, codec, settings, "instruments", f"X{i}", _listing(f"X{i}", "BTC"))
        flush(producer)
        first = follower.read_new()
        for i in range(30, 40):
            produce(producer, codec, settings, "instruments", f"X{i}", _listing(f"X{i}", "BTC"))
        flush(producer)
        second = follower.read_new()
        keys = [m.key for m in first + second]
        assert sorted(keys) == sorted(f"X{i}".encode() for i in range(40))
        assert {m.key for m in second} == {f"X{i}".encode() for i in range(30, 40)}
    finally:
        follower.close()
