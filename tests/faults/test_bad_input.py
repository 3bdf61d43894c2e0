"""Hostile input on a live worker: 1,000 bad records of every kind in tests/faults/bad_input.py
(more than 40: bytes that do not decode, values that do not validate, keys that do not name the
body's account, dead or unknown instruments and assets (those well formed held for their
reference until the partition's event time passes the deadline), timestamps out of the window,
prices, sizes, fees and ids beyond the parameters' bounds, bad market inputs, fills repeated at
another offset) mixed into 20,000 good fills: each bad record must be on the dlq once, with its
topic, partition, offset, raw key and value and the reason of its kind; no good record may be
there; the worker never stops; and the portfolio table must equal an offline replay of the good
fills alone (each applied once, in order; the held ones held offline too).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from streams import records as r
from streams.codec import CodecError
from streams.market.state import MarketState
from tests.faults import bad_input, scenario
from tests.faults.chaos import assert_same_portfolios, chaos, replay

pytestmark = [pytest.mark.broker, pytest.mark.slow]
GOOD, BAD = 20_000, 1_000
ACCOUNTS = scenario.accounts(400)


def test_bad_records_go_to_the_dlq_with_their_reason(kafka_bootstrap: str, tmp_path: Path) -> None:
    with chaos(kafka_bootstrap, tmp_path) as c:
        with pytest.raises(CodecError):
            c.codec.registry.schema_by_id(bad_input.UNKNOWN_ID)
        out = c.collect(("margin-status", "market-broadcast", "dlq"))
        worker = c.start()
        t0 = scenario.start_time()
        sent = scenario.open_accounts(c, out, ACCOUNTS, t0)
        inputs = bad_input.mix(c, scenario.fills(c, ACCOUNTS, GOOD, t0), BAD, t0)
        produced = c.produce(inputs)
        c.wait_statuses(out, [s for s in produced if s.good], timeout_s=150)
        assert worker.poll() is None, c.log_tail()
        # listings and prices move past the deadline of the inputs held for them
        later = t0 + timedelta(seconds=MarketState().params.inputs.hold_s + 60)
        relisted = r.InstrumentRecord(
            name=scenario.PERP, kind="PERPETUAL", underlying="BTC", ts=later
        )
        c.produce([c.encode("instruments", scenario.PERP, relisted)])
        c.produce(scenario.quotes(c, later, scenario.BTC + 10.0))

        bad = [s for s in produced if not s.good]
        assert len(bad) == BAD and len(produced) == GOOD + BAD
        c.wait_count(out, "dlq", BAD, timeout_s=30)
        out.poll(1.0)
        dlq: list[r.DlqRecord] = out.decoded("dlq")  # type: ignore[assignment]
        where = {(d.topic, d.partition, d.offset): d for d in dlq}
        assert len(dlq) == len(where) == BAD
        for s in bad:
            d = where.pop((c.settings.topic(s.input.topic), s.partition, s.offset))
            key = s.input.key.encode() if s.input.key is not None else None
            assert (d.reason, d.key, d.value) == (s.input.reason, key, s.input.value)
        assert not where
        kinds = Counter(s.input.reason for s in bad)
        assert Counter(d.reason for d in dlq) == kinds
        assert len(bad_input.MAKERS) + 1 >= 40  # the kinds, duplicates included
        assert set(kinds) == set(r.DlqReason) - {
            r.DlqReason.MALFORMED_BODY,  # a body fastavro cannot read at all: the codec's tests
            r.DlqReason.UNKNOWN_TOPIC,
            r.DlqReason.BAD_PARAMS,  # the parameter topic's own tests
            r.DlqReason.STALE_PARAMS,
            r.DlqReason.INTERNAL_ERROR,  # a bug: none is known
        }

        offline = replay(c, out.records["market-broadcast"], sent + produced, bad_input.HELD)
        assert_same_portfolios(c.table(), offline)
        assert sum(len(rec.recent_ids) for rec in offline.records.values()) == GOOD + len(ACCOUNTS)
