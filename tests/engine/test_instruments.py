"""Instrument names, reference data and the vectorised table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.instruments import (
    InstrumentError,
    InstrumentKind,
    InstrumentTable,
    OptionType,
    format_expiry,
    parse_expiry,
    parse_instrument,
)


def test_expiry_is_eight_utc() -> None:
    assert parse_expiry("27DEC26") == datetime(2026, 12, 27, 8, tzinfo=UTC).timestamp()
    assert format_expiry(parse_expiry("5JAN27")) == "5JAN27"


@pytest.mark.parametrize(
    ("name", "kind", "inverse"),
    [
        ("BTC", InstrumentKind.SPOT, False),
        ("BTC-PERPETUAL", InstrumentKind.PERPETUAL, False),
        ("ETH-PERPETUAL-INV", InstrumentKind.PERPETUAL, True),
        ("BTC-27DEC26", InstrumentKind.FUTURE, False),
        ("BTC-27DEC26-INV", InstrumentKind.FUTURE, True),
        ("BTC-27DEC26-100000-C", InstrumentKind.OPTION, False),
    ],
)
def test_names_parse(name: str, kind: InstrumentKind, inverse: bool) -> None:
    inst = parse_instrument(name)
    assert (inst.kind, inst.inverse, inst.underlying) == (kind, inverse, name.split("-")[0])


def test_option_fields() -> None:
    inst = parse_instrument("SOL-26MAR27-2.5-P")
    assert inst.strike == 2.5 and inst.option_type is OptionType.PUT and not inst.is_call


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "BTC-32DEC26",
        "BTC-27XYZ26",
        "BTC-27DEC26-0-C",
        "BTC-27DEC26-100-X",
        "BTC-INV",
        "BTC-27DEC26-100-C-INV",
        "b!c-PERPETUAL",
        "BTC-27DEC26-abc-C",
    ],
)
def test_bad_names_raise(bad: str) -> None:
    with pytest.raises(InstrumentError):
        parse_instrument(bad)


def test_table_registers_and_rejects_kind_changes() -> None:
    table = InstrumentTable()
    i = table.resolve("BTC-PERPETUAL")
    assert table.resolve("BTC-PERPETUAL") == i and "BTC-PERPETUAL" in table
    with pytest.raises(InstrumentError):
        table.add(
            parse_instrument("BTC-PERPETUAL-INV").__class__(
                "BTC-PERPETUAL", InstrumentKind.FUTURE, "BTC", expiry=1.0
            )
        )
    arrays = table.select(__import__("numpy").array([i]))
    assert arrays.size.tolist() == [1.0]
