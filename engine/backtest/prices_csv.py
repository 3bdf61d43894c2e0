"""A user's price history as a path: a CSV of ``timestamp,underlying,price[,implied_vol]``.

The header names the columns (any order; ``implied_vol`` optional, annual, e.g. 0.65, and may be
left empty on a row). A timestamp is ISO-8601 (UTC when it has no zone) or epoch seconds. Every
underlying needs a price at every timestamp: the path is a grid. A bad row raises
``BacktestInputError`` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from engine.backtest.errors import BacktestInputError
from engine.backtest.path import PricePath

REQUIRED = ("timestamp", "underlying", "price")
OPTIONAL = ("implied_vol",)
MIN_STEPS = 3

Row = tuple[float, str, float, float]


def load_prices_csv(path: Path) -> PricePath:
    """The path a CSV file holds (see the module's doc for the format)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise BacktestInputError(f"prices file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BacktestInputError(f"prices file {path}: not UTF-8 text") from None
    rows = list(_rows(path, text))
    return _grid(path, rows, has_vol=any(not math.isnan(r[3]) for r in rows))


def _rows(path: Path, text: str) -> Iterator[Row]:
    """Each data row parsed, in file order."""
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise BacktestInputError(f"prices file {path}: header: missing column {missing[0]!r}")
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise BacktestInputError(f"prices file {path}: header: unknown column {unknown[0]!r}")
    reader.fieldnames = header
    for raw in reader:
        yield _row(f"prices file {path} line {reader.line_num}", raw)


def _row(where: str, raw: dict[str, str | None]) -> Row:
    """One row: time, underlying, price and implied vol (NaN when absent)."""
    if None in raw:
        raise BacktestInputError(f"{where}: more fields than the header names")
    stamp = _time(where, (raw.get("timestamp") or "").strip())
    underlying = (raw.get("underlying") or "").strip().upper()
    if not underlying:
        raise BacktestInputError(f"{where}: underlying: empty")
    price = _number(where, "price", raw.get("price"))
    if price <= 0.0:
        raise BacktestInputError(f"{where}: price: must be positive, got {price}")
    vol_text = (raw.get("implied_vol") or "").strip()
    vol = _number(where, "implied_vol", vol_text) if vol_text else math.nan
    if vol_text and vol <= 0.0:
        raise BacktestInputError(f"{where}: implied_vol: must be positive, got {vol}")
    return stamp, underlying, price, vol


def _number(where: str, field: str, text: str | None) -> float:
    """A finite number from a field, or an error naming it."""
    value = (text or "").strip()
    try:
        number = float(value)
    except ValueError:
        raise BacktestInputError(f"{where}: {field}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise BacktestInputError(f"{where}: {field}: must be finite")
    return number


def _time(where: str, text: str) -> float:
    """Epoch seconds from ISO-8601 (UTC without a zone) or a number."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BacktestInputError(f"{where}: timestamp: {text!r} is not ISO-8601") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _grid(path: Path, rows: list[Row], has_vol: bool) -> PricePath:
    """Rows into a [T, U] grid; every underlying priced once at every timestamp."""
    times = sorted({r[0] for r in rows})
    names = tuple(sorted({r[1] for r in rows}))
    if len(times) < MIN_STEPS:
        raise BacktestInputError(f"prices file {path}: want at least {MIN_STEPS} timestamps")
    t_index = {t: i for i, t in enumerate(times)}
    u_index = {u: k for k, u in enumerate(names)}
    prices = np.full((len(times), len(names)), np.nan)
    vols = np.full_like(prices, np.nan)
    for stamp, und, price, vol in rows:
        cell = (t_index[stamp], u_index[und])
        if not math.isnan(prices[cell]):
            raise BacktestInputError(f"prices file {path}: {und} twice at timestamp {stamp:g}")
        prices[cell], vols[cell] = price, vol
    gaps = np.argwhere(np.isnan(prices))
    if gaps.size:
        t, k = gaps[0]
        moment = datetime.fromtimestamp(times[t], tz=UTC).isoformat()
        raise BacktestInputError(f"prices file {path}: no {names[k]} price at {moment}")
    return PricePath(path.name, np.array(times), names, prices, vols if has_vol else None)
