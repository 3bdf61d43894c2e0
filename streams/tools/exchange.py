"""A seeded exchange: instruments, oracle sources, depth, surfaces, accounts and a price path.

Accounts come in kinds (directional perpetual traders, covered-call sellers, delta-hedged option
market makers, basis traders, over-leveraged gamblers) with coin and stablecoin collateral.
Every record carries a strictly increasing timestamp so the session can be replayed in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from engine.instruments import format_expiry
from streams import records as r
from streams.topics.catalog import Topic

SPOTS = {"BTC": 100_000.0, "ETH": 4_000.0, "SOL": 200.0}
SOURCES = (("deribit", 2.0), ("binance", 2.0), ("chainlink", 1.0))
BPS = [10.0, 25.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
DEPTH_USD = {"BTC": 4e7, "ETH": 2e7, "SOL": 4e6}  # notional within 100 bps
KINDS = ("directional", "covered_call", "market_maker", "basis", "overlevered")


@dataclass
class Exchange:
    """A growing list of (topic, key, record) inputs with a simulated clock."""

    start: datetime
    seed: int = 7
    inputs: list[tuple[str, str, r.Record]] = field(default_factory=list)
    prices: dict[str, float] = field(default_factory=lambda: dict(SPOTS))
    depth_factor: float = 1.0
    liquidity_providers: int = 0
    lp_deposit_usd: float = 100_000_000.0
    _ms: int = 0
    _lps_funded: bool = False

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def tick(self, ms: int = 1) -> datetime:
        """Advance the clock and return it."""
        self._ms += ms
        return self.start + timedelta(milliseconds=self._ms)

    def add(self, topic: str, key: str, record: r.Record) -> None:
        """Queue an input."""
        self.inputs.append((topic, key, record))

    def expiries(self) -> list[datetime]:
        """Two listed expiries (about one and three months out, at 08:00 UTC)."""
        out = []
        for days in (33, 92):
            d = self.start + timedelta(days=days)
            out.append(datetime(d.year, d.month, d.day, 8, tzinfo=UTC))
        return out

    def option_names(self, und: str) -> list[tuple[str, datetime, float, str]]:
        """The listed option chain of an underlying: (name, expiry, strike, C/P)."""
        chain = []
        for expiry in self.expiries():
            tag = format_expiry(expiry.timestamp())
            for k in (0.8, 0.9, 1.0, 1.1, 1.25):
                strike = round(SPOTS[und] * k, 2)
                for cp in ("C", "P"):
                    chain.append((f"{und}-{tag}-{strike:g}-{cp}", expiry, strike, cp))
        return chain

    def list_instruments(self) -> None:
        """Reference data for perpetuals, futures and the option chains."""
        for und in SPOTS:
            ts = self.tick()
            for name, inverse in ((f"{und}-PERPETUAL", False), (f"{und}-PERPETUAL-INV", True)):
                self.add(
                    Topic.INSTRUMENTS,
                    name,
                    r.InstrumentRecord(
                        name=name, kind="PERPETUAL", underlying=und, inverse=inverse, ts=ts
                    ),
                )
            for expiry in self.expiries():
                name = f"{und}-{format_expiry(expiry.timestamp())}"
                self.add(
                    Topic.INSTRUMENTS,
                    name,
                    r.InstrumentRecord(
                        name=name, kind="FUTURE", underlying=und, expiry=expiry, ts=ts
                    ),
                )
            for name, expiry, strike, cp in self.option_names(und):
                self.add(
                    Topic.INSTRUMENTS,
                    name,
                    r.InstrumentRecord(
                        name=name,
                        kind="OPTION",
                        underlying=und,
                        expiry=expiry,
                        strike=strike,
                        option_type="CALL" if cp == "C" else "PUT",
                        ts=ts,
                    ),
                )

    def publish_market(self, vol_level: float = 1.0) -> None:
        """Oracle quotes from every source, depth and surfaces at the current prices."""
        ts = self.tick()
        for und, price in {**self.prices, "USDC": 1.0}.items():
            for source, weight in SOURCES:
                noise = 1.0 + float(self.rng.normal(0.0, 0.0002))
                self.add(
                    Topic.ORACLE_PRICES,
                    und,
                    r.OraclePrice(
                        source=source, underlying=und, price=price * noise, weight=weight, ts=ts
                    ),
                )
        for und, price in self.prices.items():
            total = DEPTH_USD[und] * self.depth_factor
            cum = [total * f for f in (0.05, 0.15, 0.4, 1.0, 2.0, 4.0, 6.0)]
            self.add(
                Topic.BOOK_DEPTH,
                und,
                r.BookDepth(underlying=und, mid=price, bps=BPS, bid=cum, ask=cum, ts=ts),
            )
            base = {"BTC": 0.55, "ETH": 0.7, "SOL": 0.9}[und] * vol_level
            smile = [
                [base * (1 + 0.3 * k * k) for k in (-0.4, -0.2, 0.0, 0.2, 0.4)] for _ in range(3)
            ]
            self.add(
                Topic.VOL_SURFACES,
                und,
                r.VolSurfaceRecord(
                    underlying=und,
                    expiries=[0.05, 0.25, 1.0],
                    log_moneyness=[-0.4, -0.2, 0.0, 0.2, 0.4],
                    vols=smile,
                    ts=ts,
                ),
            )

    def fill(self, account: str, instrument: str, qty: float, price: float) -> None:
        """A taker fill (qty signed); with liquidity providers, the maker's opposite fill too,
        so that every long has a short on the exchange (ADL then always finds counterparties)."""
        self._taker_fill(account, instrument, qty, price)
        if self.liquidity_providers:
            self._fund_liquidity_providers()
            maker = f"lp-{len(self.inputs) % self.liquidity_providers:02d}"
            self._taker_fill(maker, instrument, -qty, price, maker=True)

    def _fund_liquidity_providers(self) -> None:
        """The market makers' deposits, once, before their first fill."""
        if self._lps_funded:
            return
        self._lps_funded = True
        for i in range(self.liquidity_providers):
            self.deposit(f"lp-{i:02d}", "USDC", self.lp_deposit_usd)

    def _taker_fill(
        self, account: str, instrument: str, qty: float, price: float, maker: bool = False
    ) -> None:
        """One fill record (makers pay no fee)."""
        ts = self.tick()
        self.add(
            Topic.FILLS,
            account,
            r.Fill(
                fill_id=f"fill-{len(self.inputs)}",
                account=account,
                instrument=instrument,
                side="BUY" if qty > 0 else "SELL",
                qty=abs(qty),
                price=price,
                fee=0.0 if maker or instrument.endswith("INV") else abs(qty) * price * 0.0002,
                liquidity="MAKER" if maker else "TAKER",
                ts=ts,
            ),
        )

    def deposit(self, account: str, asset: str, amount: float) -> None:
        """A deposit."""
        self.add(
            Topic.COLLATERAL,
            account,
            r.CollateralTransfer(
                transfer_id=f"dep-{len(self.inputs)}",
                account=account,
                asset=asset,
                amount=amount,
                kind="DEPOSIT",
                ts=self.tick(),
            ),
        )

    def open_accounts(self, count: int) -> dict[str, str]:
        """Accounts of every kind, funded and trading; returns account -> kind."""
        kinds = {}
        for i in range(count):
            kind = KINDS[i % len(KINDS)] if i % 17 else "overlevered"
            account = f"{kind[:3]}-{i:05d}"
            kinds[account] = kind
            und = str(self.rng.choice(["BTC", "BTC", "ETH", "SOL"]))
            getattr(self, f"_open_{kind}")(account, und, float(self.rng.uniform(0.5, 3.0)))
        return kinds

    def _open_directional(self, a: str, u: str, size: float) -> None:
        s = self.prices[u]
        coins = size * 100_000 / s
        self.deposit(a, "USDC", 0.35 * coins * s)
        self.fill(a, f"{u}-PERPETUAL", coins * float(self.rng.choice([1, -1])), s)

    def _open_covered_call(self, a: str, u: str, size: float) -> None:
        s = self.prices[u]
        coins = size * 50_000 / s
        self.deposit(a, u, coins)
        self.deposit(a, "USDC", 0.05 * coins * s)
        name = next(n for n, _, k, cp in self.option_names(u) if cp == "C" and k > s * 1.05)
        self.fill(a, name, -coins, 0.02 * s)

    def _open_market_maker(self, a: str, u: str, size: float) -> None:
        s = self.prices[u]
        coins = size * 80_000 / s
        self.deposit(a, "USDC", 0.6 * coins * s)
        chain = self.option_names(u)
        for name, _, k, _cp in chain[:10]:
            q = coins * float(self.rng.normal(0, 0.3))
            if abs(q) > 1e-6:
                self.fill(a, name, q, max(0.01 * s, abs(s - k) * 0.5))
        self.fill(a, f"{u}-PERPETUAL", -coins * 0.2, s)

    def _open_basis(self, a: str, u: str, size: float) -> None:
        s = self.prices[u]
        coins = size * 100_000 / s
        self.deposit(a, "USDC", 0.12 * coins * s)
        future = f"{u}-{format_expiry(self.expiries()[0].timestamp())}"
        self.fill(a, future, coins, s * 1.004)
        self.fill(a, f"{u}-PERPETUAL-INV", -coins * s, s)

    def _open_overlevered(self, a: str, u: str, size: float) -> None:
        s = self.prices[u]
        coins = size * 100_000 / s
        self.deposit(a, "USDC", 0.21 * coins * s)
        self.fill(a, f"{u}-PERPETUAL", coins, s)

    def move(self, factors: dict[str, float], depth_factor: float, vol_level: float) -> None:
        """Move prices by factors, set book depth and vol level, and publish the market."""
        for und, f in factors.items():
            self.prices[und] *= f
        self.depth_factor = depth_factor
        self.publish_market(vol_level)
