"""The codec on the hot path: a fill decoded and a margin status encoded (Avro, the Confluent wire
format, the folder registry), as the account agent does for every input; target 20,000 pairs a
second on one core, the rate the pipeline is built for.

    python -m bench.bench_codec
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bench.report import Row, publish
from infra.settings import Settings
from streams import records as r
from streams.codec import codec_from_settings

TARGET_PER_S = 20_000.0
TS = datetime(2026, 11, 24, 8, 0, 0, 123000, tzinfo=UTC)
FILL = r.Fill(
    fill_id="f-1",
    account="acct-1",
    instrument="BTC-PERPETUAL",
    side="SELL",
    qty=1.5,
    price=100_010.5,
    fee=0.75,
    liquidity="MAKER",
    ts=TS,
)


def status() -> r.MarginStatus:
    """A status of the size a two-underlying account's is."""
    component = r.UnderlyingComponent(
        underlying="BTC",
        worst_loss=10.0,
        directional=-9.0,
        two_sided=1.0,
        contingencies=1.5,
        short_option=0.5,
        delta=0.5,
        basis=0.5,
        liquidity_addon=0.1,
        delta_notional=-50.0,
    )
    return r.MarginStatus(
        status_id="s-1",
        account="acct-1",
        state="MARGIN_CALL",
        equity=10.0,
        equity_mm=9.0,
        equity_im=8.5,
        im=12.0,
        mm=9.0,
        ratio_mm=None,
        components=[component, component.model_copy(update={"underlying": "ETH"})],
        directional_total=9.0,
        scenario_requirement=11.5,
        es99=7.0,
        var99=5.0,
        liquidity_addon=0.1,
        haircuts={"USDC": 0.02, "BTC": 0.11},
        params_version="default@1",
        stale_underlyings=[],
        reason="FILL",
        input_topic="spma.fills",
        input_partition=3,
        input_offset=42,
        ts=TS,
    )


def run(n: int = 20_000) -> dict[str, float]:
    """Pairs (a fill decoded, a status encoded) a second, best of three runs of ``n``."""
    codec = codec_from_settings(Settings())
    fill, margin = codec.encode("fills", FILL), status()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            codec.decode("fills", fill)
            codec.encode("margin-status", margin)
        best = min(best, time.perf_counter() - start)
    return {"pairs_per_s": n / best, "pair_us": best / n * 1e6}


def main() -> dict[str, float]:
    """Run, print the table, write reports/bench_codec.json."""
    f = run()
    rows = [
        Row(
            "fill decode + status encode",
            f["pairs_per_s"],
            "/s",
            target=TARGET_PER_S,
            lower=False,
        ),
        Row("one pair", f["pair_us"], "µs"),
    ]
    publish(
        "codec", "the codec on the hot path (Avro, Confluent wire format)", rows, {"figures": f}
    )
    return f


if __name__ == "__main__":
    main()
