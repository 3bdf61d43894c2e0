"""What-if and pre-trade requests on a partition's processor, without Kafka or HTTP
(streams/accounts/whatif.py): the answer is the fill applied for real, the processor is left
exactly as it was, and the pre-trade verdict says why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from streams import records as r
from streams.accounts.outputs import InputRef
from streams.accounts.processor import AccountProcessor
from streams.accounts.whatif import (
    MAX_BODY,
    RequestError,
    pre_trade_answer,
    verdict,
    what_if_answer,
)
from tests.streams.test_processor import T0, _setup

FIGURES = ("equity", "equity_mm", "equity_im", "im", "mm", "es99")


def _fill(qty: float, price: float, offset: int) -> tuple[r.Fill, InputRef]:
    """A real fill of account x on BTC-PERPETUAL."""
    fill = r.Fill(
        fill_id=f"f{offset}",
        account="x",
        instrument="BTC-PERPETUAL",
        side="BUY" if qty > 0 else "SELL",
        qty=abs(qty),
        price=price,
        fee=3.0,
        liquidity="TAKER",
        ts=T0,
    )
    return fill, InputRef("fills", 0, offset)


def _state(proc: AccountProcessor) -> tuple[bytes, bytes, bytes]:
    """The record, the book's row vectors and balances of account x, as bytes."""
    row = proc.book.account_index["x"]
    vectors = b"".join(b.pnl[row].tobytes() for b in proc.book.underlyings.values())
    return proc.records["x"].to_json(), vectors, proc.book.collateral[row].tobytes()


def test_a_what_if_is_the_fill_applied_and_changes_nothing() -> None:
    proc, _ = _setup()
    twin, _ = _setup()
    before = _state(proc)
    body = {"fills": [{"instrument": "BTC-PERPETUAL", "qty": 0.5, "price": 99_000.0, "fee": 3.0}]}
    answer = what_if_answer(proc, "x", orjson.dumps(body))
    for _ in range(3):  # and again: still nothing changes
        what_if_answer(proc, "x", orjson.dumps({"moves": {"BTC": -0.2}}))
        pre_trade_answer(
            proc, "x", b'{"instrument": "BTC-PERPETUAL", "side": "sell", "qty": 9, "price": 1}'
        )
    assert _state(proc) == before
    fill = _fill(0.5, 99_000.0, 2)
    (status,) = [o.record for o in proc.on_fill(*fill) if isinstance(o.record, r.MarginStatus)]
    (twin_status,) = [o.record for o in twin.on_fill(*fill) if isinstance(o.record, r.MarginStatus)]
    assert status == twin_status  # the next status is the one without the what-ifs
    for key in FIGURES:
        assert answer["after"][key] == pytest.approx(getattr(status, key), rel=1e-9), key
    assert answer["after"]["state"] == status.state.value
    assert answer["change"]["im"] == answer["after"]["im"] - answer["before"]["im"]


def test_pre_trade_accepts_what_stays_above_im_or_reduces_risk() -> None:
    proc, _ = _setup()
    small = {"instrument": "BTC-PERPETUAL", "side": "buy", "qty": 0.01, "price": 100_000}
    answer = pre_trade_answer(proc, "x", orjson.dumps(small))
    assert answer["accept"] and answer["reason"].startswith("at or above IM")
    huge = {**small, "qty": 5.0}
    answer = pre_trade_answer(proc, "x", orjson.dumps(huge))
    assert not answer["accept"] and "does not reduce risk" in answer["reason"]
    assert answer["shortfall_after"] == pytest.approx(
        answer["im_after"] - answer["equity_im_after"]
    )
    assert verdict(100.0, 50.0, 80.0, 40.0) == (True, verdict(100.0, 50.0, 80.0, 40.0)[1])
    assert verdict(100.0, 50.0, 80.0, 40.0)[1].startswith("reduces risk")
    assert not verdict(100.0, 50.0, 80.0, 10.0)[0]  # IM falls but the shortfall grows


@pytest.mark.parametrize(
    ("answer", "raw", "status", "field"),
    [
        (what_if_answer, b"[1, 2", 400, "body"),
        (what_if_answer, b"[]", 400, "body"),
        (what_if_answer, b" " * (MAX_BODY + 1), 413, "body"),
        (
            what_if_answer,
            b'{"fills": [{"instrument": "ETH-PERPETUAL", "qty": 1, "price": 1}]}',
            400,
            "fills[0].instrument",
        ),
        (
            what_if_answer,
            b'{"fills": [{"instrument": "BTC-PERPETUAL", "qty": 1e999, "price": 1}]}',
            400,
            "body",  # orjson refuses an infinite number: malformed JSON,
        ),
        (
            what_if_answer,
            b'{"fills": ['
            + b'{"instrument": "BTC-PERPETUAL", "qty": 1, "price": 1},' * 100
            + b'{"instrument": "BTC-PERPETUAL", "qty": 1, "price": 1}]}',
            400,
            "fills",
        ),
        (
            pre_trade_answer,
            b'{"instrument": "BTC-PERPETUAL", "side": "buy", "qty": 0, "price": 1}',
            400,
            "qty",
        ),
        (
            pre_trade_answer,
            b'{"instrument": "BTC-PERPETUAL", "side": "buy", "qty": 1, "price": 1, "x": 1}',
            400,
            "x",
        ),
    ],
)
def test_bad_requests_name_their_field(
    answer: Callable[[AccountProcessor, str, bytes], dict[str, Any]],
    raw: bytes,
    status: int,
    field: str,
) -> None:
    proc, _ = _setup()
    with pytest.raises(RequestError) as err:
        answer(proc, "x", raw)
    assert (err.value.status, err.value.field) == (status, field)
    assert err.value.body("x")["error"]
