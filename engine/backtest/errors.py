"""The backtest's input error: a file or value it cannot use, named in the message."""

from __future__ import annotations

from engine.errors import EngineError


class BacktestInputError(EngineError, ValueError):
    """A price file, portfolio or setting the backtest cannot use; the message names the file
    (or option) and the field at fault."""
