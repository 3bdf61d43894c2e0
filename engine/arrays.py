"""Array type aliases shared by the engine, and the year length used for time to expiry
(named so that it shadows no library: a module `types.py` would hide the standard one)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

YEAR_SECONDS = 365 * 86400.0  # margin-model.md section 2: years = seconds / (365 x 86400)
