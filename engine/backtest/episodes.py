"""The stress episodes of the built-in paths, sized on documented crypto crashes.

Each gives one simple return per day and underlying (BTC-, ETH- and SOL-like), and the multiple
by which implied volatility rose. Sizes are the public record's, rounded:

- 2020-03 (Covid, 12-13 March): BTC fell about 50% over two days (7,900 to 3,900 USD) and rebounded
  to about 60% of its start within days; ETH fell more; BTC's 30-day implied vol went from about
  60% to about 150% (x2.5).
- 2021-05 (19 May): BTC fell about 30% intraday (43,000 to 30,000), with alts falling 40-45%, and
  recovered half of it; implied vol doubled.
- 2022-11 (FTX, 7-9 November): BTC fell about 25% over three days (21,000 to 15,700); SOL, FTX's
  own, lost about 60%; implied vol rose by about 80%.
- 2025-10 (10 October): BTC fell about 14% in hours (122,000 to 105,000) while alts fell 40% or
  more; implied vol rose by about 60%.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Episode:
    """A documented crash: daily simple returns per underlying and the implied-vol multiple."""

    name: str
    returns: dict[str, tuple[float, ...]]
    vol_multiple: float
    day: int
    """The day of the built-in year on which it starts."""

    @property
    def days(self) -> int:
        """Its length in daily steps."""
        return len(next(iter(self.returns.values())))

    def returns_of(self, underlying: str) -> tuple[float, ...]:
        """An underlying's returns (an unlisted one moves like SOL, the alt of the set)."""
        return self.returns.get(underlying, self.returns["SOL"])


EPISODES = (
    Episode(
        "2020-03 covid: -50% over two days, partial rebound",
        {
            "BTC": (-0.38, 0.5 / 0.62 - 1.0, 0.10, 0.08, 0.05),
            "ETH": (-0.42, -0.22, 0.10, 0.08, 0.05),
            "SOL": (-0.45, -0.25, 0.12, 0.08, 0.05),
        },
        2.5,
        day=45,
    ),
    Episode(
        "2021-05 leverage flush: -30% intraday",
        {"BTC": (-0.30, 0.15), "ETH": (-0.40, 0.20), "SOL": (-0.45, 0.25)},
        2.0,
        day=130,
    ),
    Episode(
        "2022-11 FTX: -25% over three days",
        {
            "BTC": (-0.10, -0.10, 0.75 / 0.81 - 1.0),
            "ETH": (-0.12, -0.12, -0.09),
            "SOL": (-0.25, -0.30, -0.30),
        },
        1.8,
        day=215,
    ),
    Episode(
        "2025-10 liquidation cascade: -14% in hours, alts -40%",
        {"BTC": (-0.14, 0.05), "ETH": (-0.20, 0.08), "SOL": (-0.40, 0.15)},
        1.6,
        day=300,
    ),
)
"""The four episodes, in the order (and on the days) the built-in year holds them."""
