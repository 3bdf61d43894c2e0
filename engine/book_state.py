"""One underlying's part of the book: its instruments, risk arrays and per-account vectors.

It holds the sparse accounts x instruments exposure matrix Q_u (with pending incremental changes
folded in lazily), the instruments' valuation (unit values, delta notionals, risk arrays), and per
account: scenario PnL P_u [A, J], position value, net delta notional, basis-bucket nets and net
short option units. Coin collateral of the underlying enters P_u, delta and basis bucket 0.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engine.arrays import FloatArray, IntArray
from engine.instruments import InstrumentArrays, InstrumentKind, InstrumentTable
from engine.market import MarketSnapshot
from engine.params import RiskParams
from engine.risk_arrays import Valuation, spot_valuation, value_instruments
from engine.scenarios import ScenarioGrid, scenario_grid

PERPETUAL_BUCKET = 0  # perpetuals and coin collateral share the expiry-0 basis bucket


class UnderlyingBook:
    """The vectorised state of every account on one underlying."""

    def __init__(self, name: str, capacity: int, params: RiskParams, psr: float | None) -> None:
        self.name = name
        self.params = params
        self.grid: ScenarioGrid = scenario_grid(params, name, psr)
        self.gids: list[int] = []
        self.local: dict[int, int] = {}
        self.arrays = InstrumentArrays.of([])
        self.basis_bucket: IntArray = np.zeros(0, dtype=np.int64)
        self.option_bucket: IntArray = np.zeros(0, dtype=np.int64)
        self._basis_ids: dict[float, int] = {}
        self._option_ids: dict[tuple[float, float], int] = {}
        self.valuation: Valuation | None = None
        self.spot_price = 0.0
        self.spot_risk: FloatArray = np.zeros(self.grid.size)
        self.capacity = capacity
        self.matrix = sp.csr_matrix((capacity, 0))
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_one: list[tuple[int, int, float]] = []  # single changes, folded lazily
        self._unit_lists: tuple[list[float], list[float], list[int]] = ([], [], [])
        self.pnl = np.zeros((capacity, self.grid.size))
        self.value = np.zeros(capacity)
        self.delta = np.zeros(capacity)
        self.basis = np.zeros((capacity, 1))
        self.short_units = np.zeros(capacity)

    # ----- shape --------------------------------------------------------------------------

    def layout_copy(self, capacity: int) -> UnderlyingBook:
        """An empty book of `capacity` rows on the same grid, instruments and valuation (shared
        read-only: a revaluation replaces them, never writes into them), its own lists and
        vectors, so that nothing done to the copy reaches this book."""
        copy = UnderlyingBook.__new__(UnderlyingBook)
        copy.__dict__.update(self.__dict__)
        copy.gids, copy.local = list(self.gids), dict(self.local)
        copy._basis_ids, copy._option_ids = dict(self._basis_ids), dict(self._option_ids)
        copy.capacity = capacity
        copy.matrix = sp.csr_matrix((capacity, len(self.gids)))
        copy._pending, copy._pending_one = [], []
        copy.pnl = np.zeros((capacity, self.grid.size))
        copy.value = np.zeros(capacity)
        copy.delta = np.zeros(capacity)
        copy.basis = np.zeros((capacity, self.basis.shape[1]))
        copy.short_units = np.zeros(capacity)
        return copy

    def grow(self, capacity: int) -> None:
        """Room for more accounts."""
        extra = capacity - self.capacity
        self.pnl = np.vstack([self.pnl, np.zeros((extra, self.grid.size))])
        self.value = np.concatenate([self.value, np.zeros(extra)])
        self.delta = np.concatenate([self.delta, np.zeros(extra)])
        self.basis = np.vstack([self.basis, np.zeros((extra, self.basis.shape[1]))])
        self.short_units = np.concatenate([self.short_units, np.zeros(extra)])
        self.capacity = capacity

    def ensure_instrument(self, gid: int, table: InstrumentTable, market: MarketSnapshot) -> int:
        """Local column of an instrument, adding it (and revaluing the arrays) when new."""
        local = self.local.get(gid)
        if local is not None:
            return local
        self.ensure_instruments([gid], table, market)
        return self.local[gid]

    def ensure_instruments(
        self, gids: list[int], table: InstrumentTable, market: MarketSnapshot
    ) -> None:
        """Add the instruments not held yet, then revalue the arrays once."""
        new = [g for g in dict.fromkeys(gids) if g not in self.local]
        if not new:
            return
        for gid in new:
            inst = table.instruments[gid]
            self.local[gid] = len(self.gids)
            self.gids.append(gid)
            self.basis_bucket = np.append(self.basis_bucket, self._basis_id(inst.kind, inst.expiry))
            self.option_bucket = np.append(
                self.option_bucket, self._option_id(inst.kind, inst.expiry, inst.strike)
            )
        self.arrays = InstrumentArrays.of([table.instruments[g] for g in self.gids])
        self.revalue_instruments(table, market)

    def _basis_id(self, kind: InstrumentKind, expiry: float | None) -> int:
        """Basis bucket of a linear contract (-1 for options)."""
        if kind is InstrumentKind.OPTION:
            return -1
        if expiry is None:
            return PERPETUAL_BUCKET
        if expiry not in self._basis_ids:
            self._basis_ids[expiry] = len(self._basis_ids) + 1
            self.basis = np.hstack([self.basis, np.zeros((self.capacity, 1))])
        return self._basis_ids[expiry]

    def _option_id(self, kind: InstrumentKind, expiry: float | None, strike: float | None) -> int:
        """Short-option netting bucket (expiry, strike) of an option (-1 otherwise)."""
        if kind is not InstrumentKind.OPTION or expiry is None or strike is None:
            return -1
        return self._option_ids.setdefault((expiry, strike), len(self._option_ids))

    # ----- valuation ----------------------------------------------------------------------

    def set_psr(self, psr: float | None, params: RiskParams) -> None:
        """New parameters or effective PSR: rebuild the grid (vectors follow on revalue)."""
        self.params = params
        grid = scenario_grid(params, self.name, psr)
        if grid.size != self.grid.size:
            self.pnl = np.zeros((self.capacity, grid.size))
        self.grid = grid

    def revalue_instruments(self, table: InstrumentTable, market: MarketSnapshot) -> None:
        """Recompute unit values, deltas and risk arrays of this underlying's instruments."""
        und = market.underlyings[self.name]
        own = np.array(
            [market.marks.get(table.instruments[g].name, np.nan) for g in self.gids],
            dtype=np.float64,
        )
        self.valuation = value_instruments(
            self.arrays, own, und, self.grid, market.as_of, self.params.vol_shock, self.name
        )
        val = self.valuation
        self._unit_lists = (val.value.tolist(), val.delta.tolist(), self.basis_bucket.tolist())
        price = float(market.price_of_asset(self.name))
        self.spot_price, _, self.spot_risk = spot_valuation(price, self.grid)

    def revalue(
        self, table: InstrumentTable, market: MarketSnapshot, coins: FloatArray | None
    ) -> None:
        """New market data: new risk arrays, then every account's vectors in sparse products."""
        self.revalue_instruments(table, market)
        assert self.valuation is not None
        q = self.exposures()
        val = self.valuation
        self.pnl = np.asarray(q @ val.risk) if self.gids else np.zeros_like(self.pnl)
        self.value = np.asarray(q @ val.value) if self.gids else np.zeros(self.capacity)
        self.delta = np.asarray(q @ val.delta) if self.gids else np.zeros(self.capacity)
        self.basis = np.asarray((q @ self._basis_matrix()).toarray()) if self.gids else self.basis
        if coins is not None:
            held = np.zeros(self.capacity)
            held[: coins.size] = coins[: self.capacity]
            self.pnl += held[:, None] * self.spot_risk[None, :]
            self.delta += held * self.spot_price
            self.basis[:, PERPETUAL_BUCKET] += held * self.spot_price

    def _basis_matrix(self) -> sp.csr_matrix:
        """[I_u, buckets] sparse: each linear contract's delta notional in its expiry bucket."""
        assert self.valuation is not None
        linear = np.flatnonzero(self.basis_bucket >= 0)
        return sp.csr_matrix(
            (self.valuation.delta[linear], (linear, self.basis_bucket[linear])),
            shape=(len(self.gids), self.basis.shape[1]),
        )

    def exposures(self) -> sp.csr_matrix:
        """Q_u with every pending change folded in."""
        shape = (self.capacity, len(self.gids))
        if self.matrix.shape != shape:
            self.matrix.resize(shape)
        if self._pending_one:
            one = self._pending_one
            self._pending.append(
                (
                    np.array([c[0] for c in one], dtype=np.int64),
                    np.array([c[1] for c in one], dtype=np.int64),
                    np.array([c[2] for c in one], dtype=np.float64),
                )
            )
            self._pending_one.clear()
        if self._pending:
            rows = np.concatenate([p[0] for p in self._pending])
            cols = np.concatenate([p[1] for p in self._pending])
            vals = np.concatenate([p[2] for p in self._pending])
            self._pending.clear()
            change = sp.csr_matrix((vals, (rows, cols)), shape=shape)
            self.matrix = (self.matrix + change).tocsr()
            self.matrix.eliminate_zeros()
        return self.matrix

    # ----- incremental changes -----------------------------------------------------------

    def apply_exposure(self, row: int, local: int, change: float) -> None:
        """One account's exposure to one instrument changed: O(J) update of its vectors."""
        if change == 0.0:
            return
        assert self.valuation is not None
        values, deltas, buckets = self._unit_lists
        self.pnl[row] += change * self.valuation.risk[local]
        self.value[row] += change * values[local]
        self.delta[row] += change * deltas[local]
        bucket = buckets[local]
        if bucket >= 0:
            self.basis[row, bucket] += change * deltas[local]
        self._pending_one.append((row, local, change))

    def reset_row(self, row: int, coin: float) -> None:
        """The account holds no position on this underlying any more: its vectors become exactly
        its coin's (a sum of incremental changes leaves float residue, which would show as a
        requirement of 1e-12 on an empty account and keep it below MM for ever)."""
        self._pending_one = [c for c in self._pending_one if c[0] != row]
        self._pending = [_without_row(p, row) for p in self._pending]
        if row < self.matrix.shape[0]:
            m = self.matrix
            m.data[m.indptr[row] : m.indptr[row + 1]] = 0.0
        self.pnl[row] = coin * self.spot_risk
        self.value[row] = 0.0
        self.delta[row] = coin * self.spot_price
        self.basis[row] = 0.0
        self.basis[row, PERPETUAL_BUCKET] = coin * self.spot_price
        self.short_units[row] = 0.0

    def apply_coin(self, row: int, change: float) -> None:
        """An account's balance of this underlying's coin changed."""
        self.pnl[row] += change * self.spot_risk
        self.delta[row] += change * self.spot_price
        self.basis[row, PERPETUAL_BUCKET] += change * self.spot_price

    def bulk_add(
        self,
        rows: np.ndarray,
        gids: np.ndarray,
        qty: np.ndarray,
        entry: np.ndarray,
        table: InstrumentTable,
    ) -> None:
        """Queue many positions' exposures (vectors are rebuilt by the next revalue)."""
        local = np.array([self.local[g] for g in gids.tolist()], dtype=np.int64)
        inverse = self.arrays.inverse[local]
        exposure = np.where(inverse, qty / entry, qty)
        self._pending.append((rows, local, exposure))

    def cost_of(
        self, gids: np.ndarray, qty: np.ndarray, entry: np.ndarray, table: InstrumentTable
    ) -> FloatArray:
        """Cost basis of many positions: qty size entry, qty for inverse, 0 for options."""
        local = np.array([self.local[g] for g in gids.tolist()], dtype=np.int64)
        arr = self.arrays
        linear = np.where(arr.inverse[local], qty, qty * arr.size[local] * entry)
        return np.asarray(np.where(self.option_bucket[local] >= 0, 0.0, linear))


def _without_row(
    pending: tuple[np.ndarray, np.ndarray, np.ndarray], row: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Queued exposure changes without those of one row."""
    keep = pending[0] != row
    return pending[0][keep], pending[1][keep], pending[2][keep]
