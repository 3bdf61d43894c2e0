"""The demo's live terminal view (rich): prices, accounts by state, calls, liquidations, fund."""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from streams.tools.demo.observer import Observer
from streams.topics.catalog import Topic

STATES = ("HEALTHY", "MARGIN_CALL", "LIQUIDATION", "BANKRUPT")


def panel(observer: Observer, phase: str, done: float, prices: dict[str, float]) -> Group:
    """One frame: the market, the accounts, the loop's counts and the progress."""
    market = Table(title="market", expand=False)
    for und in prices:
        market.add_column(und, justify="right")
    market.add_row(*(f"{p:,.2f}" for p in prices.values()))
    states = observer.states()
    accounts = Table(title="accounts by state")
    for state in STATES:
        accounts.add_column(state, justify="right")
    accounts.add_row(*(f"{states.get(s, 0):,}" for s in STATES))
    counts = observer.counts
    loop = Table(title="the loop")
    for label in ("margin calls", "liquidation orders", "ADL orders", "insurance fund (USD)"):
        loop.add_column(label, justify="right")
    loop.add_row(
        f"{counts[Topic.MARGIN_CALLS]:,}",
        f"{counts[Topic.LIQUIDATIONS]:,}",
        f"{counts[Topic.ADL]:,}",
        f"{observer.fund_balance:,.2f}",
    )
    return Group(
        f"[bold]phase:[/bold] {phase}",
        ProgressBar(total=1.0, completed=min(done, 1.0), width=60),
        market,
        accounts,
        loop,
    )


class LiveView:
    """A rich Live display on a terminal, or one plain line per step elsewhere."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        if console.is_terminal:
            self.live = Live(console=console, refresh_per_second=4, transient=False)
            self.live.start()

    def __call__(
        self, observer: Observer, phase: str, done: float, prices: dict[str, float]
    ) -> None:
        """Show the state after a step."""
        if self.live is not None:
            self.live.update(panel(observer, phase, done, prices))
            return
        states = observer.states()
        self.console.print(
            f"{done:4.0%} {phase:<9} BTC {prices['BTC']:>11,.2f}  "
            + "  ".join(f"{s} {states.get(s, 0)}" for s in STATES)
            + f"  orders {observer.counts[Topic.LIQUIDATIONS]}  ADL {observer.counts[Topic.ADL]}"
            + f"  fund {observer.fund_balance:,.2f}"
        )

    def stop(self) -> None:
        """End the live display."""
        if self.live is not None:
            self.live.stop()
