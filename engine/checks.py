"""Shape checks shared by the engine's market data and the stream's records (one rule each)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.arrays import FloatArray


def is_increasing(values: Sequence[float] | FloatArray, strict: bool = True) -> bool:
    """True when the values increase strictly (``strict``) or never decrease."""
    steps = np.diff(np.asarray(values, dtype=np.float64))
    return bool(np.all(steps > 0) if strict else np.all(steps >= 0))
