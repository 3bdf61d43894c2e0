"""A crash scenario for the simulator: a seeded exchange, then a falling market in steps.

BTC falls by ``crash`` over ``steps`` equal legs of ``step_s`` seconds of event time, ETH and SOL
following (ETH a little less, SOL a little more), books thinning linearly to ``depth_floor`` of
their depth and vols rising; ``hold`` repeats the last market later (liquidations repeat after a
minute of event time). A few reckless longs (2% margin) are opened so that the first leg makes
them bankrupt with positions open: the fund and ADL are exercised, not only the book. Every seeded
trade has a maker among ``liquidity_providers`` well-funded accounts, so the exchange's open
interest balances (each long has a short) as on a real venue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streams import records as r
from streams.tools.exchange import Exchange

Inputs = list[tuple[str, str, r.Record]]


@dataclass
class CrashScenario:
    """The parameters of a crash and the exchange it plays on."""

    accounts: int = 2000
    crash: float = 0.35
    steps: int = 12
    step_s: float = 300.0
    depth_floor: float = 0.10
    vol_peak: float = 1.8
    reckless: int | None = None
    liquidity_providers: int = 16

    def seed(self, start: datetime) -> Exchange:
        """Listing, the market, the accounts and the reckless longs."""
        ex = Exchange(start, liquidity_providers=self.liquidity_providers)
        ex.list_instruments()
        ex.publish_market()
        ex.open_accounts(self.accounts)
        btc = ex.prices["BTC"]
        for i in range(
            self.reckless if self.reckless is not None else max(5, self.accounts // 200)
        ):
            ex.deposit(f"gap-{i:03d}", "USDC", 0.02 * btc)
            ex.fill(f"gap-{i:03d}", "BTC-PERPETUAL", 1.0, btc)
        return ex

    def step(self, ex: Exchange, k: int) -> Inputs:
        """The market after leg k: prices down, books thinner, vols up."""
        mark = len(ex.inputs)
        ex.tick(int(self.step_s * 1000))
        leg = (1.0 - self.crash) ** (1.0 / self.steps)
        done = (k + 1) / self.steps
        ex.move(
            {"BTC": leg, "ETH": leg**0.9, "SOL": leg**1.1},
            depth_factor=1.0 - (1.0 - self.depth_floor) * done,
            vol_level=1.0 + (self.vol_peak - 1.0) * done,
        )
        return ex.inputs[mark:]

    def hold(self, ex: Exchange, seconds: float = 120.0) -> Inputs:
        """The same market some seconds later."""
        mark = len(ex.inputs)
        ex.tick(int(seconds * 1000))
        ex.move({}, depth_factor=ex.depth_factor, vol_level=self.vol_peak)
        return ex.inputs[mark:]

    @property
    def duration_s(self) -> float:
        """Event time the crash covers."""
        return self.steps * self.step_s
