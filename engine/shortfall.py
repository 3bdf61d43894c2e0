"""Expected shortfall (section 5): joint Student-t moves and ES_99 / VaR_99 per account.

M joint standardised moves z are drawn once per correlation matrix (fixed seed) from a
multivariate Student-t with df degrees of freedom scaled to unit variance. At evaluation each
underlying's move is z_u sigma_u sqrt(horizon/365), clipped to its ES grid; an account's PnL on
it is its ES-grid PnL linearly interpolated, summed over underlyings. ES_99 is the mean of the
worst ceil(M (1 - q)) joint PnLs as a positive loss (0 when that mean is a gain); VaR_99 is the
worst of the rest's boundary: the ceil(M (1 - q))-th worst PnL as a loss, floored at 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engine.arrays import FloatArray, IntArray
from engine.params import ShortfallParams

CHUNK_ACCOUNTS = 128
"""Accounts per matrix product: the [CHUNK, M] joint PnL (2 MiB at M = 2,000) stays in cache
between the product that writes it and the partition that reads it (4,096 rows, 64 MiB: the
same ES about 30% slower, the partition then reading from memory)."""


def psd_cholesky(rho: FloatArray) -> FloatArray:
    """A lower factor L with L L' = rho, clipping negative eigenvalues when rho is not PSD."""
    try:
        return np.asarray(np.linalg.cholesky(rho), dtype=np.float64)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(rho)
        fixed = vecs @ np.diag(np.maximum(vals, 1e-12)) @ vecs.T
        scale = np.sqrt(np.diag(fixed))
        return np.asarray(np.linalg.cholesky(fixed / np.outer(scale, scale)), dtype=np.float64)


def student_t_draws(rho: FloatArray, params: ShortfallParams) -> FloatArray:
    """[M, U] joint Student-t moves with correlation rho and unit variance (fixed seed)."""
    rng = np.random.default_rng(params.seed)
    size = rho.shape[0]
    normal = rng.standard_normal((params.draws, size)) @ psd_cholesky(rho).T
    chi = rng.chisquare(params.df, size=params.draws)
    scale = np.sqrt((params.df - 2.0) / chi)
    return np.asarray(normal * scale[:, None])


def interpolation_points(grid: FloatArray, moves: FloatArray) -> tuple[IntArray, FloatArray]:
    """Each move's lower grid index lo and fraction f, the move clipped to the grid: the PnL at
    it is p[lo] (1 - f) + p[lo + 1] f. A one-point grid gives lo = 0 and f = 0."""
    g = grid.size
    if g == 1:
        return np.zeros(moves.size, dtype=np.int64), np.zeros(moves.size)
    clipped = np.clip(moves, grid[0], grid[-1])
    lo = np.clip(np.searchsorted(grid, clipped, side="right") - 1, 0, g - 2).astype(np.int64)
    frac = (clipped - grid[lo]) / (grid[lo + 1] - grid[lo])
    return lo, np.asarray(frac, dtype=np.float64)


def interpolation_matrix(grid: FloatArray, moves: FloatArray) -> FloatArray:
    """[G, M] weights W so that pnl_grid @ W is the PnL linearly interpolated at each move."""
    g, m = grid.size, moves.size
    weights = np.zeros((g, m))
    if g == 1:
        weights[0, :] = 1.0
        return weights
    lo, frac = interpolation_points(grid, moves)
    cols = np.arange(m)
    weights[lo, cols] = 1.0 - frac
    weights[lo + 1, cols] += frac
    return weights


class ShortfallModel:
    """ES_99 and VaR_99 for many accounts over a fixed set of underlyings."""

    def __init__(self, underlyings: Sequence[str], rho: FloatArray, params: ShortfallParams):
        self.underlyings = tuple(underlyings)
        self.params = params
        self.rho = rho
        self.draws = student_t_draws(rho, params) if self.underlyings else np.zeros((0, 0))
        self.tail = max(1, math.ceil(params.draws * (1.0 - params.quantile) - 1e-9))

    def moves(self, sigmas: FloatArray) -> FloatArray:
        """[M, U] underlying moves for annual vols sigmas [U] over the horizon (unclipped)."""
        horizon = math.sqrt(self.params.horizon_days / 365.0)
        return np.asarray(self.draws * (sigmas * horizon)[None, :])

    def weights(self, grids: Sequence[FloatArray], sigmas: FloatArray) -> FloatArray:
        """[U * G, M] stacked interpolation weights for the ES grids of every underlying."""
        moves = self.moves(sigmas)
        blocks = [interpolation_matrix(g, moves[:, u]) for u, g in enumerate(grids)]
        return np.vstack(blocks) if blocks else np.zeros((0, self.params.draws))

    def points(
        self, grids: Sequence[FloatArray], sigmas: FloatArray
    ) -> tuple[IntArray, FloatArray]:
        """[U, M] interpolation points into the stacked ES grids (lo offset by each underlying's
        block) and their fractions: the sparse form of weights(), for one account at a time."""
        moves = self.moves(sigmas)
        los, fracs, start = [], [], 0
        for u, g in enumerate(grids):
            lo, frac = interpolation_points(g, moves[:, u])
            los.append(lo + start)
            fracs.append(frac)
            start += g.size
        if not los:
            empty = (0, self.params.draws)
            return np.zeros(empty, dtype=np.int64), np.zeros(empty)
        return np.vstack(los), np.vstack(fracs)

    def evaluate(self, pnl_grid: FloatArray, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
        """ES and VaR per account from ES-grid PnL [A, U * G] and weights [U * G, M]."""
        accounts = pnl_grid.shape[0]
        es, var = np.zeros(accounts), np.zeros(accounts)
        if weights.size == 0 or accounts == 0:
            return es, var
        for start in range(0, accounts, CHUNK_ACCOUNTS):
            stop = min(start + CHUNK_ACCOUNTS, accounts)
            es[start:stop], var[start:stop] = self.tail_losses(pnl_grid[start:stop] @ weights)
        return es, var

    def tail_losses(self, joint: FloatArray) -> tuple[FloatArray, FloatArray]:
        """ES and VaR from joint PnL [..., M]: the mean and the best of the worst `tail` draws,
        as losses floored at 0."""
        k = self.tail
        ordered = np.partition(joint, k - 1, axis=-1)
        es = np.maximum(-ordered[..., :k].mean(axis=-1), 0.0)
        var = np.maximum(-ordered[..., k - 1], 0.0)  # partitioned: the k-th worst sits at k - 1
        return np.asarray(es), np.asarray(var)
