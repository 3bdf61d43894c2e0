"""The scenario requirement (section 5): worst loss, directional split, correlation across
underlyings with the capped credit. Vectorised over accounts and underlyings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.arrays import BoolArray, FloatArray
from engine.params import CorrelationParams
from engine.scenarios import LossSide


@dataclass(frozen=True)
class WorstLosses:
    """Per account and underlying [A, U]: worst loss L, down-side and up-side worst losses."""

    worst: FloatArray
    down: FloatArray
    up: FloatArray

    @property
    def two_sided(self) -> FloatArray:
        """N = min(L_down, L_up): the part that loses either way (straddles, vega)."""
        return np.minimum(self.down, self.up)

    @property
    def directional(self) -> FloatArray:
        """X = d (L - N), d = +1 when the worst is on the down side, -1 on the up side."""
        sign = np.where(self.down >= self.up, 1.0, -1.0)
        return np.asarray(sign * (self.worst - self.two_sided))


def worst_losses(
    pnl: FloatArray, weights: FloatArray, down: BoolArray, up: BoolArray
) -> WorstLosses:
    """Worst weighted losses of scenario PnL [..., J] with weights, down and up masks [J]."""
    live = weights != 0.0
    sides = [np.flatnonzero(mask & live) for mask in (down, up)]
    return worst_losses_at(pnl, *(LossSide(i, np.asarray(-weights[i])) for i in sides))


def worst_losses_at(pnl: FloatArray, down: LossSide, up: LossSide) -> WorstLosses:
    """Worst losses from each side's weighted scenarios (ScenarioGrid.loss_sides).

    Every scenario is on the down side (m <= 0) or the up side (m >= 0), so the worst loss is the
    larger of the two sides'. Only the weighted scenarios are gathered: a third of the work of
    masking every scenario with -inf, and the same figures.
    """
    down_worst = _side_worst(pnl, down)
    up_worst = _side_worst(pnl, up)
    return WorstLosses(np.maximum(down_worst, up_worst), down_worst, up_worst)


def _side_worst(pnl: FloatArray, side: LossSide) -> FloatArray:
    """max(0, max_j pnl_j x -w_j) over the scenarios of one side."""
    if side.index.size == 0:
        return np.zeros(pnl.shape[:-1])
    loss = pnl[..., side.index] * side.neg_weights
    return np.asarray(np.maximum(loss.max(axis=-1), 0.0))


def correlation_matrix(underlyings: Sequence[str], params: CorrelationParams) -> FloatArray:
    """The stressed correlation matrix rho over the underlyings, in their order."""
    n = len(underlyings)
    rows = [[params.rho(a, b) for b in underlyings] for a in underlyings]
    return np.array(rows, dtype=float).reshape(n, n)


def directional_total(x: FloatArray, rho: FloatArray, max_credit: float) -> FloatArray:
    """max(sqrt(max(0, X' rho X)), (1 - max_credit) sum |X|) per account; x is [A, U]."""
    quad = np.einsum("au,uv,av->a", x, rho, x)
    floor = (1.0 - max_credit) * np.abs(x).sum(axis=-1)
    return np.asarray(np.maximum(np.sqrt(np.maximum(quad, 0.0)), floor))
