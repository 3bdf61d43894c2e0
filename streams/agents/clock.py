"""The worker's clock for input times: wall-clock now, shifted by an offset (tests replaying
another day set it), and the check that refuses inputs stamped too far in the future."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from streams.errors import InputRejected
from streams.records import DlqReason


@dataclass
class Clock:
    """Wall-clock time as the worker judges input times by."""

    offset_s: float = 0.0

    def now(self) -> float:
        """Wall-clock now (epoch seconds), shifted by the offset."""
        return time.time() + self.offset_s

    def check(self, ts: datetime, tolerance_s: float) -> None:
        """Reject a timestamp more than the tolerance ahead of now (FUTURE_TIMESTAMP)."""
        if ts.timestamp() > self.now() + tolerance_s:
            raise InputRejected(
                DlqReason.FUTURE_TIMESTAMP,
                f"ts {ts.isoformat()} is more than {tolerance_s:g} s ahead",
            )
