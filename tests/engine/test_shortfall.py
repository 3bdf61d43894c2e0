"""Joint Student-t draws and the ES/VaR evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from engine.params import ShortfallParams
from engine.shortfall import ShortfallModel, interpolation_matrix, student_t_draws


def test_draws_have_unit_variance_the_correlation_and_fat_tails() -> None:
    rho = np.array([[1.0, 0.8], [0.8, 1.0]])
    z = student_t_draws(rho, ShortfallParams(draws=200_000))
    assert z.var(axis=0) == pytest.approx([1.0, 1.0], rel=0.05)
    assert np.corrcoef(z.T)[0, 1] == pytest.approx(0.8, abs=0.02)
    kurtosis = ((z[:, 0] - z[:, 0].mean()) ** 4).mean() / z[:, 0].var() ** 2
    assert kurtosis > 4.0  # a normal has 3
    again = student_t_draws(rho, ShortfallParams(draws=200_000))
    assert np.array_equal(z, again)


def test_interpolation_is_linear_and_clipped() -> None:
    grid = np.array([-0.1, 0.0, 0.1])
    w = interpolation_matrix(grid, np.array([-0.05, 0.1, 0.5, -1.0]))
    pnl = np.array([[-10.0, 0.0, 10.0]])
    assert (pnl @ w)[0].tolist() == pytest.approx([-5.0, 10.0, 10.0, -10.0])


def test_es_is_the_mean_of_the_worst_one_percent() -> None:
    model = ShortfallModel(["BTC"], np.eye(1), ShortfallParams(draws=1000))
    weights = np.eye(1000)
    pnl = -np.arange(1000.0)[None, :]  # losses 0..999
    es, var = model.evaluate(pnl, weights)
    assert es[0] == pytest.approx(np.mean(np.arange(990, 1000)))
    assert var[0] == pytest.approx(990.0)
    gains = model.evaluate(np.abs(pnl) + 1, weights)
    assert gains[0][0] == 0.0 and gains[1][0] == 0.0
