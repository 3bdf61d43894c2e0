"""Schema evolution with worker processes on the embedded broker.

Two apps read the same fills: one worker reads fills with the old schema (fill v1, pinned with
SPMA_SCHEMA_VERSIONS, as a worker not yet upgraded would), the other with the newest (v3: v2 added
order_id, v3 isolated, both with defaults). Producers write the fills alternately with v1 (an old
producer) and v3 (a new one, order ids set). Both apps must apply every fill, none goes to the dlq,
and each app's portfolio table must equal the offline replay: an old reader drops the new fields,
a new reader fills in their defaults.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest

from streams.accounts.portfolio import PortfolioRecord
from streams.codec import AvroCodec
from streams.codec.wire import read_header
from tests.faults import scenario
from tests.faults.chaos import Input, assert_same_portfolios, chaos, replay

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ACCOUNTS = scenario.accounts(40)
FILLS = 400


def test_old_and_new_fill_schemas_with_old_and_new_readers(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with chaos(kafka_bootstrap, tmp_path, partitions=2) as c:
        out = c.collect(("market-broadcast", "dlq"))
        old_app = c.harness.app_id
        c.start(env={"SPMA_SCHEMA_VERSIONS": json.dumps({"fill": 1})})
        new_app = c.harness.app_id = f"{old_app}-v3"
        c.start()
        apps = (old_app, new_app)
        t0 = scenario.start_time()
        sent = c.produce(scenario.market(c, t0))
        c.wait_count(out, "market-broadcast", 2 * 3 * 2, timeout_s=90)
        sent += c.produce(scenario.deposit(c, a, t0 + timedelta(milliseconds=1)) for a in ACCOUNTS)
        for app in apps:
            c.wait_table(lambda t: len(t) == len(ACCOUNTS), 90, "the deposits", app)

        old_writer = AvroCodec(c.codec.registry, versions={"fill": 1})
        rng = random.Random(9)
        fills: list[Input] = []
        for i in range(FILLS):
            account = ACCOUNTS[i % len(ACCOUNTS)]
            fill = scenario.fill_record(i, account, rng, t0 + timedelta(milliseconds=2 + i))
            if i % 2:
                fill = fill.model_copy(update={"order_id": f"order-{i}"})
                fills.append(c.encode("fills", account, fill))
            else:
                fills.append(Input("fills", account, old_writer.encode("fills", fill), fill))
        produced = c.produce(fills)
        ids = {read_header(s.input.value) for s in produced}
        assert ids == {old_writer.schema_id("fills"), c.codec.schema_id("fills")}

        def applied(table: dict[str, PortfolioRecord]) -> bool:
            return sum(len(rec.recent_ids) for rec in table.values()) == FILLS + len(ACCOUNTS)

        offline = replay(c, out.records["market-broadcast"], sent + produced)
        for app in apps:
            assert_same_portfolios(c.wait_table(applied, 90, f"every fill in {app}", app), offline)
        out.poll(1.0)
        assert not out.records["dlq"], out.decoded("dlq")[:3]
