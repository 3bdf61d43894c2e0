"""Scenario grids per underlying (section 4) and the expiry-scaled volatility shocks.

A parameter set's scenarios are data; a grid turns them into arrays for one underlying with its
price scan range: moves m_j, weights w_j (tail dampening min(1, PSR/|m|)), vol states, and the
ES grid (the ``es`` scenarios sorted by move). Every underlying shares the same J scenarios, so
per-account vectors stack into one [accounts, underlyings, scenarios] array.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from engine.arrays import BoolArray, FloatArray, IntArray
from engine.params import RiskParams, ScenarioRole, VolShockParams, VolState

VOL_CODES = {VolState.UP: 1, VolState.NONE: 0, VolState.DOWN: -1}


@dataclass(frozen=True)
class ScenarioGrid:
    """The scenarios of one underlying as arrays of length J."""

    psr: float
    moves: FloatArray
    weights: FloatArray
    vol_state: IntArray
    es_index: IntArray

    @property
    def size(self) -> int:
        """Number of scenarios J."""
        return int(self.moves.size)

    @property
    def down(self) -> BoolArray:
        """Scenarios on the down side (m <= 0), for the directional split."""
        return np.asarray(self.moves <= 0.0)

    @property
    def up(self) -> BoolArray:
        """Scenarios on the up side (m >= 0)."""
        return np.asarray(self.moves >= 0.0)

    @property
    def es_moves(self) -> FloatArray:
        """The ES-grid moves, increasing."""
        return np.asarray(self.moves[self.es_index])

    @cached_property
    def es_slice(self) -> slice | None:
        """The ES grid as a slice of the scenarios when it is a contiguous ascending run (the
        default set: the last 21), so one account's ES-grid PnL is a view, not a gather."""
        idx = self.es_index
        if idx.size and bool(np.all(np.diff(idx) == 1)):
            return slice(int(idx[0]), int(idx[-1]) + 1)
        return None

    @cached_property
    def loss_sides(self) -> tuple[LossSide, LossSide]:
        """The down-side and up-side scenarios with a non-zero weight, and their -w_j.

        A worst loss can only come from these: a zero-weight scenario (an ES-grid point) loses
        0, which the floor at 0 of every worst loss already covers.
        """
        live = self.weights != 0.0
        sides = []
        for mask in (self.down & live, self.up & live):
            index = np.flatnonzero(mask).astype(np.int64)
            sides.append(LossSide(index, np.asarray(-self.weights[index])))
        return sides[0], sides[1]


@dataclass(frozen=True)
class LossSide:
    """One side's scenarios (indices into J) and their negated weights: loss = pnl x neg_w."""

    index: IntArray
    neg_weights: FloatArray


LOWEST_MOVE = -1.0
"""The largest fall a scenario may take: to a price of zero. A tail move in multiples of a scan
range above 50% (span16's -2 x PSR under a dynamic PSR of 0.55) would ask for a negative price,
which values options at NaN; it is the fall to zero instead."""


def scenario_grid(params: RiskParams, underlying: str, psr: float | None = None) -> ScenarioGrid:
    """The grid of an underlying, with its PSR (or an effective PSR from dynamic margin)."""
    scan = params.psr_for(underlying) if psr is None else psr
    specs = params.scenario_set.scenarios
    moves = np.array([s.move * scan if s.unit == "psr" else s.move for s in specs])
    moves = np.maximum(moves, LOWEST_MOVE)  # a tail move of a wide scan (span16's -2 x PSR)
    weights = np.array(
        [
            min(1.0, scan / abs(m))
            if s.weight == "dampened" and m != 0
            else _fixed_weight(s.weight)
            for s, m in zip(specs, moves, strict=True)
        ]
    )
    vol_state = np.array([VOL_CODES[s.vol] for s in specs], dtype=np.int64)
    es = [j for j, s in enumerate(specs) if s.role is ScenarioRole.ES]
    es_index = np.array(sorted(es, key=lambda j: moves[j]), dtype=np.int64)
    return ScenarioGrid(scan, moves.astype(np.float64), weights, vol_state, es_index)


def _fixed_weight(weight: float | str) -> float:
    """A numeric weight ('dampened' at m = 0 counts fully)."""
    return 1.0 if isinstance(weight, str) else float(weight)


def shocked_vols(
    vol: FloatArray, dte_days: FloatArray, shock: VolShockParams
) -> tuple[FloatArray, FloatArray]:
    """sigma_up and sigma_down for options of given base vol and days to expiry (section 4).

    sigma_up = sigma (1 + up (ref/DTE)^p), at least up_floor; sigma_down = sigma (1 - down
    (ref/DTE)^p), at least down_floor; p = exponent_short for DTE <= ref, exponent_long beyond;
    DTE floored at min_dte_days. The floors are absolute vol levels.
    """
    dte = np.maximum(dte_days, shock.min_dte_days)
    exponent = np.where(dte <= shock.ref_days, shock.exponent_short, shock.exponent_long)
    scale = (shock.ref_days / dte) ** exponent
    up = np.maximum(vol * (1.0 + shock.up * scale), shock.up_floor)
    down = np.maximum(vol * (1.0 - shock.down * scale), shock.down_floor)
    return up, down
