"""Loading many positions into a book at once (benchmarks, large rebuilds): one sparse build per
underlying instead of a call per position, with the same vectors as loading them one by one
(tests/engine/test_book.py holds them equal)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.book import MarginBook
from engine.book_state import UnderlyingBook


def bulk_load(
    book: MarginBook,
    accounts: Sequence[str],
    instruments: Sequence[str],
    account_rows: np.ndarray,
    instrument_cols: np.ndarray,
    qty: np.ndarray,
    entry: np.ndarray,
) -> None:
    """Load many positions into empty accounts: position k is (accounts[account_rows[k]],
    instruments[instrument_cols[k]], qty[k], entry[k])."""
    rows = np.array([book.account_row(a) for a in accounts], dtype=np.int64)[account_rows]
    gids = np.array([book.instruments.resolve(n) for n in instruments], dtype=np.int64)
    gid = gids[instrument_cols]
    for r, g, q, e in zip(rows.tolist(), gid.tolist(), qty.tolist(), entry.tolist(), strict=True):
        book.holdings[r].positions[g] = (q, e)
    by_underlying: dict[str, list[int]] = {}
    for g in np.unique(gid).tolist():
        inst = book.instruments.instruments[g]
        by_underlying.setdefault(inst.underlying, []).append(g)
    for name, members in by_underlying.items():
        und = book.underlying_book(name)
        for g in members:
            und.ensure_instrument(g, book.instruments, book.market)
        mask = np.isin(gid, members)
        und.bulk_add(rows[mask], gid[mask], qty[mask], entry[mask], book.instruments)
        book.cost += np.bincount(
            rows[mask],
            weights=und.cost_of(gid[mask], qty[mask], entry[mask], book.instruments),
            minlength=book.capacity,
        )
        _option_nets(book, und, rows[mask], gid[mask], qty[mask])
    for name in by_underlying:
        book.underlyings[name].revalue(book.instruments, book.market, book.coin_column(name))


def _option_nets(
    book: MarginBook, und: UnderlyingBook, rows: np.ndarray, gid: np.ndarray, qty: np.ndarray
) -> None:
    """Option bucket nets and short units after a bulk load."""
    local = np.array([und.local[g] for g in gid.tolist()], dtype=np.int64)
    is_option = und.option_bucket[local] >= 0
    sizes = und.arrays.size[local]
    for r, b, q, s in zip(
        rows[is_option].tolist(),
        und.option_bucket[local][is_option].tolist(),
        qty[is_option].tolist(),
        sizes[is_option].tolist(),
        strict=True,
    ):
        nets = book.holdings[r].option_nets.setdefault(und.name, {})
        nets[b] = nets.get(b, 0.0) + q * s
    for r in np.unique(rows[is_option]).tolist():
        nets = book.holdings[r].option_nets[und.name]
        und.short_units[r] = sum(max(-v, 0.0) for v in nets.values())
