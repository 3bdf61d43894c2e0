"""Instruments: names parsed by the crypto convention, reference data, and a vectorised table.

Names (margin-model.md section 1): ``BTC`` (spot), ``BTC-PERPETUAL`` (linear perpetual),
``BTC-27DEC26`` (linear future), ``BTC-27DEC26-100000-C`` / ``-P`` (European option),
``BTC-PERPETUAL-INV`` / ``BTC-27DEC26-INV`` (inverse, quantified in USD notional). An expiry in a
name is at 08:00 UTC that day.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np

from engine.arrays import BoolArray, FloatArray, IntArray
from engine.errors import EngineError

EXPIRY_HOUR_UTC = 8
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_DATE = re.compile(r"^(\d{1,2})([A-Z]{3})(\d{2})$")
_ASSET = re.compile(r"^[A-Z0-9]{2,12}$")
PERPETUAL_TOKENS = ("PERPETUAL", "PERP")


class InstrumentError(EngineError, ValueError):
    """An instrument name or reference record that cannot be understood."""


class InstrumentKind(StrEnum):
    """What a contract is; the value of one contract follows from it (section 1)."""

    SPOT = "SPOT"
    PERPETUAL = "PERPETUAL"
    FUTURE = "FUTURE"
    OPTION = "OPTION"


class OptionType(StrEnum):
    """Call or put."""

    CALL = "CALL"
    PUT = "PUT"


@dataclass(frozen=True)
class Instrument:
    """Reference data of one instrument; expiry in epoch seconds (UTC), None for perpetual/spot."""

    name: str
    kind: InstrumentKind
    underlying: str
    expiry: float | None = None
    strike: float | None = None
    option_type: OptionType | None = None
    contract_size: float = 1.0
    inverse: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.contract_size) and self.contract_size > 0):
            raise InstrumentError(f"{self.name}: contract_size must be positive")
        if self.kind is InstrumentKind.OPTION:
            if self.strike is None or not (math.isfinite(self.strike) and self.strike > 0):
                raise InstrumentError(f"{self.name}: an option needs a positive strike")
            if self.option_type is None or self.expiry is None:
                raise InstrumentError(f"{self.name}: an option needs a type and an expiry")
            if self.inverse:
                raise InstrumentError(f"{self.name}: inverse options are not supported")
        if self.kind is InstrumentKind.FUTURE and self.expiry is None:
            raise InstrumentError(f"{self.name}: a future needs an expiry")

    @property
    def is_call(self) -> bool:
        """True for a call option."""
        return self.option_type is OptionType.CALL

    @property
    def is_linear_contract(self) -> bool:
        """Perpetuals and futures (linear or inverse): valued from their own mark."""
        return self.kind in (InstrumentKind.PERPETUAL, InstrumentKind.FUTURE)


def parse_expiry(token: str) -> float:
    """Epoch seconds of an expiry token such as ``27DEC26`` (08:00 UTC that day)."""
    match = _DATE.match(token)
    if not match or match.group(2) not in _MONTHS:
        raise InstrumentError(f"bad expiry {token!r}: want e.g. 27DEC26")
    day, month, year = int(match.group(1)), _MONTHS[match.group(2)], 2000 + int(match.group(3))
    try:
        moment = datetime(year, month, day, EXPIRY_HOUR_UTC, tzinfo=UTC)
    except ValueError as exc:
        raise InstrumentError(f"bad expiry {token!r}: {exc}") from None
    return moment.timestamp()


def format_expiry(ts: float) -> str:
    """Inverse of parse_expiry (``27DEC26``)."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return f"{moment.day}{moment.strftime('%b').upper()}{moment.strftime('%y')}"


def parse_instrument(name: str, contract_size: float = 1.0) -> Instrument:
    """Reference data from a name in the crypto convention; raises InstrumentError."""
    parts = name.strip().upper().split("-")
    underlying = parts[0]
    if not _ASSET.match(underlying):
        raise InstrumentError(f"bad instrument {name!r}: bad underlying {underlying!r}")
    inverse = len(parts) > 1 and parts[-1] == "INV"
    body = parts[1:-1] if inverse else parts[1:]
    if not body:
        if inverse:
            raise InstrumentError(f"bad instrument {name!r}: INV needs a contract")
        return Instrument(name, InstrumentKind.SPOT, underlying)
    if len(body) == 1 and body[0] in PERPETUAL_TOKENS:
        return Instrument(
            name, InstrumentKind.PERPETUAL, underlying, contract_size=contract_size, inverse=inverse
        )
    expiry = parse_expiry(body[0])
    if len(body) == 1:
        return Instrument(
            name, InstrumentKind.FUTURE, underlying, expiry, None, None, contract_size, inverse
        )
    if len(body) == 3 and not inverse:
        return Instrument(
            name,
            InstrumentKind.OPTION,
            underlying,
            expiry,
            _parse_strike(name, body[1]),
            _parse_option_type(name, body[2]),
            contract_size,
        )
    raise InstrumentError(f"bad instrument {name!r}: not a spot, perpetual, future or option")


def _parse_strike(name: str, token: str) -> float:
    """A strike token: a positive number (``100000``, ``2.5`` or ``2d5``)."""
    try:
        strike = float(token.replace("D", "."))
    except ValueError:
        raise InstrumentError(f"bad instrument {name!r}: bad strike {token!r}") from None
    if not (math.isfinite(strike) and strike > 0):
        raise InstrumentError(f"bad instrument {name!r}: strike must be positive")
    return strike


def _parse_option_type(name: str, token: str) -> OptionType:
    """``C`` or ``P``."""
    if token == "C":
        return OptionType.CALL
    if token == "P":
        return OptionType.PUT
    raise InstrumentError(f"bad instrument {name!r}: option type must be C or P")


KIND_CODES = {
    InstrumentKind.SPOT: 0,
    InstrumentKind.PERPETUAL: 1,
    InstrumentKind.FUTURE: 2,
    InstrumentKind.OPTION: 3,
}


@dataclass
class InstrumentTable:
    """Every known instrument with its reference data as parallel arrays (index = position)."""

    instruments: list[Instrument] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.instruments)

    def __contains__(self, name: object) -> bool:
        return name in self.index

    def add(self, instrument: Instrument) -> int:
        """Register (or replace the reference data of) an instrument; returns its index."""
        existing = self.index.get(instrument.name)
        if existing is not None:
            if self.instruments[existing] != instrument:
                old = self.instruments[existing]
                if (old.kind, old.underlying, old.inverse) != (
                    instrument.kind,
                    instrument.underlying,
                    instrument.inverse,
                ):
                    raise InstrumentError(
                        f"{instrument.name}: reference data would change its kind or underlying"
                    )
                self.instruments[existing] = instrument
            return existing
        self.index[instrument.name] = len(self.instruments)
        self.instruments.append(instrument)
        return len(self.instruments) - 1

    def get(self, name: str) -> Instrument:
        """The instrument of a name: registered reference data, else parsed from the name."""
        idx = self.index.get(name)
        if idx is not None:
            return self.instruments[idx]
        return parse_instrument(name)

    def resolve(self, name: str) -> int:
        """Index of a name, registering it from its parsed name when unknown."""
        idx = self.index.get(name)
        return idx if idx is not None else self.add(parse_instrument(name))

    def select(self, indices: IntArray) -> InstrumentArrays:
        """The reference data of some instruments as arrays (for vectorised valuation)."""
        chosen = [self.instruments[int(i)] for i in indices]
        return InstrumentArrays.of(chosen)


@dataclass(frozen=True)
class InstrumentArrays:
    """Reference data of a list of instruments as parallel numpy arrays."""

    kind: IntArray
    expiry: FloatArray
    strike: FloatArray
    is_call: BoolArray
    size: FloatArray
    inverse: BoolArray

    @classmethod
    def of(cls, instruments: list[Instrument]) -> InstrumentArrays:
        """Arrays from instruments (NaN where a field does not apply)."""
        nan = float("nan")
        return cls(
            kind=np.array([KIND_CODES[i.kind] for i in instruments], dtype=np.int64),
            expiry=np.array(
                [i.expiry if i.expiry is not None else nan for i in instruments], dtype=np.float64
            ),
            strike=np.array(
                [i.strike if i.strike is not None else nan for i in instruments], dtype=np.float64
            ),
            is_call=np.array([i.is_call for i in instruments], dtype=np.bool_),
            size=np.array([i.contract_size for i in instruments], dtype=np.float64),
            inverse=np.array([i.inverse for i in instruments], dtype=np.bool_),
        )
