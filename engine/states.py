"""Account states of section 8 and their classification, vectorised over accounts."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from engine.arrays import BoolArray, FloatArray, IntArray


class AccountState(StrEnum):
    """HEALTHY, MARGIN_CALL (reduce-only), LIQUIDATION, BANKRUPT."""

    HEALTHY = "HEALTHY"
    MARGIN_CALL = "MARGIN_CALL"
    LIQUIDATION = "LIQUIDATION"
    BANKRUPT = "BANKRUPT"


STATES = (
    AccountState.HEALTHY,
    AccountState.MARGIN_CALL,
    AccountState.LIQUIDATION,
    AccountState.BANKRUPT,
)
STATE_CODES = {state: code for code, state in enumerate(STATES)}


def classify(
    equity: FloatArray,
    equity_mm: FloatArray,
    equity_im: FloatArray,
    im: FloatArray,
    mm: FloatArray,
    has_positions: BoolArray,
) -> IntArray:
    """State codes (index into STATES) per account.

    BANKRUPT when E < 0: with no position left to close, or with positions that any closing
    would trade past the bankruptcy price (at E < 0 every price is past it), so that the deficit
    goes to the insurance fund and ADL instead of the book. LIQUIDATION when E_mm < MM;
    MARGIN_CALL when E_im < IM; else HEALTHY. ``has_positions`` is kept for callers that report it.
    """
    code = np.full(equity.shape, STATE_CODES[AccountState.HEALTHY], dtype=np.int64)
    code[equity_im < im] = STATE_CODES[AccountState.MARGIN_CALL]
    code[equity_mm < mm] = STATE_CODES[AccountState.LIQUIDATION]
    code[equity < 0.0] = STATE_CODES[AccountState.BANKRUPT]
    return code


def ratio_mm(equity_mm: FloatArray, mm: FloatArray) -> FloatArray:
    """E_mm / MM per account, +inf when MM = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mm > 0.0, equity_mm / np.where(mm > 0.0, mm, 1.0), np.inf)
    return np.asarray(ratio)
