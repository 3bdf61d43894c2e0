"""A PMRM_2 margin as Derive's cases state it, and its comparison with a case's ``Result``.

Figures carry Derive's names (lower-cased) and signs: losses and contingencies negative, margin
= mark-to-market minus requirement. Scenario losses are split as Derive reports them: the
regular grid ([move, vol, loss], move = spot shock - 1, vol 1 up / 0 none / -1 down), the tails
beyond it, and the skew shocks ([name, loss]).
"""

from __future__ import annotations

import math
from typing import Any

from engine.derive.model import Pmrm2Margin
from engine.derive.params import Pmrm2Params, VolShock

RELATIVE_TOLERANCE = 1e-8
ABSOLUTE_FLOOR = 1e-8
VOL_CODES = {VolShock.UP: 1, VolShock.NONE: 0, VolShock.DOWN: -1}

FIGURES = {
    "im": "IM",
    "mm": "MM",
    "worst_reg_loss": "worst_reg_loss",
    "worst_tail_loss": "worst_tail_loss",
    "worst_skew_loss": "worst_skew_loss",
    "forward_contingency": "ForwardContingency",
    "oracle_contingency": "OracleCont",
    "option_mtm": "OptionMTM",
    "collateral_mtm": "CollateralMTM",
    "portfolio_mtm": "PortfolioMTM",
    "reg_losses": "reg_losses",
    "tail_losses": "tail_losses",
    "skew_losses": "skew_losses",
}
"""Our figure name -> the name of the same figure in a case's Result."""


def split_losses(
    result: Pmrm2Margin, params: Pmrm2Params
) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]]]:
    """(regular, tail, skew) scenario losses in the Result's list shapes."""
    regular: list[list[Any]] = []
    tail: list[list[Any]] = []
    skew: list[list[Any]] = []
    limit = params.regular_spot_range + 1e-9
    for scenario, pnl in zip(params.scenarios, result.scenario_pnls, strict=True):
        if scenario.is_skew:
            skew.append([scenario.vol_shock.value, float(pnl)])
            continue
        move = round(scenario.spot_shock - 1.0, 12)
        row = [move, VOL_CODES[scenario.vol_shock], float(pnl)]
        (regular if abs(move) <= limit else tail).append(row)
    return regular, tail, skew


def _worst(rows: list[list[Any]]) -> float | None:
    """The lowest loss of a list (its last column), None when empty."""
    return min((float(r[-1]) for r in rows), default=None)


def figures(name: str, result: Pmrm2Margin, params: Pmrm2Params) -> dict[str, Any]:
    """The case's figures, one JSON object: the case name first, then FIGURES' keys."""
    regular, tail, skew = split_losses(result, params)
    return {
        "case": name,
        "im": result.im,
        "mm": result.mm,
        "worst_reg_loss": _worst(regular),
        "worst_tail_loss": _worst(tail),
        "worst_skew_loss": _worst(skew),
        "forward_contingency": result.forward_contingency,
        "oracle_contingency": -result.contingencies.oracle,
        "option_mtm": result.option_mtm,
        "collateral_mtm": result.collateral_mtm,
        "portfolio_mtm": result.portfolio_mtm,
        "reg_losses": regular,
        "tail_losses": tail,
        "skew_losses": skew,
    }


def close(ours: float, theirs: float) -> bool:
    """Equal within 1e-8 relative, with an absolute floor of 1e-8."""
    return abs(ours - theirs) <= max(RELATIVE_TOLERANCE * abs(theirs), ABSOLUTE_FLOOR)


def _number(value: Any) -> float | None:
    """A Result entry as a number (Derive writes many as decimal strings); None if it is not."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _diff_value(label: str, ours: Any, theirs: Any) -> list[str]:
    """A difference line when two entries differ (numbers within tolerance, else exactly)."""
    a, b = _number(ours), _number(theirs)
    if a is not None and b is not None:
        if close(a, b):
            return []
        gap = abs(a - b) / abs(b) if b else math.inf
        return [f"{label}: ours {a!r}, Derive's {b!r} (relative difference {gap:.3e})"]
    return [] if ours == theirs else [f"{label}: ours {ours!r}, Derive's {theirs!r}"]


def _diff_rows(label: str, ours: list[list[Any]], theirs: Any) -> list[str]:
    """Difference lines between two loss lists, row by row and column by column."""
    if not isinstance(theirs, list) or len(theirs) != len(ours):
        count = len(theirs) if isinstance(theirs, list) else theirs
        return [f"{label}: ours has {len(ours)} rows, Derive's {count!r}"]
    lines: list[str] = []
    for i, (row, other) in enumerate(zip(ours, theirs, strict=True)):
        if not isinstance(other, list) or len(other) != len(row):
            lines.append(f"{label}[{i}]: ours {row!r}, Derive's {other!r}")
            continue
        for j, (a, b) in enumerate(zip(row, other, strict=True)):
            lines += _diff_value(f"{label}[{i}][{j}]", a, b)
    return lines


def differences(ours: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """One line per figure (or list entry) that differs from Derive's Result."""
    lines: list[str] = []
    for key, theirs_key in FIGURES.items():
        label = f"Result.{theirs_key}"
        theirs = result.get(theirs_key)
        if key.endswith("_losses"):
            lines += _diff_rows(label, ours[key], theirs)
        else:
            lines += _diff_value(label, ours[key], theirs)
    return lines
