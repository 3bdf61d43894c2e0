"""What an account input must be before it touches a portfolio: keyed by its own account, with
ids of bounded length, stamped within the partition's window of event time, on an instrument
that is live, in an asset written as a collateral symbol, and with a price, a notional and a fee
within the bounds of the risk parameters in force (``RiskParams.inputs``). Each failure is an
``InputRejected`` with its dlq reason, raised before anything is applied.

The partition's market state gives the references: its event time, its marks and its book
depth. A reference the partition does not have yet (no mark, no depth) bounds nothing: an input
may race ahead of its market, and a bound must never refuse a valid input for that.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from engine.instruments import Instrument, InstrumentError, InstrumentKind
from engine.params import InputParams
from streams.accounts.holding import AwaitingReference, is_known_asset, is_listed
from streams.errors import InputRejected
from streams.market.state import MarketState
from streams.records import CollateralTransfer, DlqReason, Fill


def check_key(key: bytes | None, account: str) -> None:
    """The record's key must name its account (the master): the key chose the partition, so a
    body of another account would live in a partition that is not its own."""
    if key is None:
        raise InputRejected(DlqReason.NULL_KEY, f"no key; the body names account {account!r}")
    if key != account.encode():
        shown = key[:80].decode(errors="replace")
        raise InputRejected(
            DlqReason.KEY_MISMATCH, f"key {shown!r} differs from the body's account {account!r}"
        )


def check_ids(limits: InputParams, **ids: str | None) -> None:
    """Every id at most ``max_id_length`` characters (OUT_OF_RANGE naming the field)."""
    for name, value in ids.items():
        if value is not None and len(value) > limits.max_id_length:
            raise InputRejected(
                DlqReason.OUT_OF_RANGE,
                f"{name}: {len(value)} characters, at most {limits.max_id_length}",
            )


def check_time(ts: datetime, market: MarketState, limits: InputParams) -> None:
    """Not older than ``max_age_s`` before the partition's event time (STALE_TIMESTAMP); a
    partition without event time yet has no window."""
    now = market.as_of
    if now > 0.0 and ts.timestamp() < now - limits.max_age_s:
        raise InputRejected(
            DlqReason.STALE_TIMESTAMP,
            f"ts {ts.isoformat()} is more than {limits.max_age_s:g} s before the partition's "
            f"event time {datetime.fromtimestamp(now, tz=UTC).isoformat()}",
        )


def live_instrument(fill: Fill, market: MarketState) -> Instrument:
    """The fill's instrument (UNKNOWN_INSTRUMENT when its name means nothing), not expired at
    the fill's time (EXPIRED_INSTRUMENT), listed (else AwaitingReference: the fill is held for
    its listing, streams/accounts/holding.py)."""
    try:
        inst = market.instruments.get(fill.instrument)
    except InstrumentError as exc:
        raise InputRejected(DlqReason.UNKNOWN_INSTRUMENT, str(exc)) from None
    if inst.expiry is not None and inst.expiry <= fill.ts.timestamp():
        expired = datetime.fromtimestamp(inst.expiry, tz=UTC).isoformat()
        raise InputRejected(
            DlqReason.EXPIRED_INSTRUMENT,
            f"{inst.name} expired at {expired}, before the fill at {fill.ts.isoformat()}",
        )
    if not is_listed(inst, market):
        raise AwaitingReference(DlqReason.UNKNOWN_INSTRUMENT, f"{inst.name} is not listed")
    return inst


def fill_notional(inst: Instrument, qty: float, price: float, mark: float | None) -> float:
    """A fill's USD notional: contracts x size x price (the underlying's mark for an option,
    its face for an inverse contract)."""
    units = abs(qty) * inst.contract_size
    if inst.inverse:
        return units
    if inst.kind is InstrumentKind.OPTION:
        return units * (mark if mark is not None else price)
    return units * price


def check_fill(fill: Fill, market: MarketState) -> Instrument:
    """A fill that may be applied: its instrument (checks in the module's order)."""
    limits = market.params.inputs
    check_ids(
        limits,
        fill_id=fill.fill_id,
        account=fill.account,
        sub_account=fill.sub_account,
        order_id=fill.order_id,
    )
    check_time(fill.ts, market, limits)
    inst = live_instrument(fill, market)
    mark = market.marks.get(inst.underlying)
    _check_price(fill, inst, mark, limits.price_ratio(inst.underlying))
    notional = fill_notional(inst, fill.qty, fill.price, mark)
    _check_notional(notional, inst.underlying, limits, f"fill of {fill.qty:g} {inst.name}")
    _check_depth(fill, inst, notional, market, limits)
    allowed = limits.max_fee_fraction * notional + limits.fee_floor_usd
    if not abs(fill.fee) <= allowed:
        raise InputRejected(
            DlqReason.OUT_OF_RANGE,
            f"fee {fill.fee:g} beyond {allowed:g} ({limits.max_fee_fraction:g} of the notional "
            f"{notional:g} USD plus {limits.fee_floor_usd:g})",
        )
    return inst


def _check_price(fill: Fill, inst: Instrument, mark: float | None, ratio: float) -> None:
    """A future's, perpetual's or spot's price within a ratio of its underlying's mark (above
    or below); an option's premium at most the larger of the mark and the strike (no option is
    worth more), times the ratio."""
    if mark is None:
        return
    if inst.kind is InstrumentKind.OPTION:
        ceiling = max(mark, inst.strike or 0.0) * ratio
        if fill.price > ceiling:
            raise InputRejected(
                DlqReason.OUT_OF_RANGE,
                f"premium {fill.price:g} above {ceiling:g} ({ratio:g} times the larger of the "
                f"mark {mark:g} and the strike)",
            )
        return
    if not mark / ratio <= fill.price <= mark * ratio:
        raise InputRejected(
            DlqReason.OUT_OF_RANGE,
            f"price {fill.price:g} beyond {ratio:g} times or a {ratio:g}th of the "
            f"{inst.underlying} mark {mark:g}",
        )


def _check_notional(notional: float, underlying: str, limits: InputParams, what: str) -> None:
    """A notional at most the underlying's bound."""
    bound = limits.max_notional(underlying)
    if not (math.isfinite(notional) and notional <= bound):
        raise InputRejected(
            DlqReason.OUT_OF_RANGE, f"{what}: notional {notional:g} USD above {bound:g}"
        )


def _check_depth(
    fill: Fill, inst: Instrument, notional: float, market: MarketState, limits: InputParams
) -> None:
    """A fill's notional at most ``max_depth_multiple`` times the whole depth of the book side
    it took (when the partition knows the book)."""
    depth = market.depth.get(inst.underlying)
    if depth is None:
        return
    side = depth.side(sell=fill.signed_qty < 0)
    whole = float(side[-1])
    if whole > 0.0 and notional > limits.max_depth_multiple * whole:
        raise InputRejected(
            DlqReason.OUT_OF_RANGE,
            f"notional {notional:g} USD is more than {limits.max_depth_multiple:g} times the "
            f"{inst.underlying} book's depth of {whole:g} USD",
        )


def check_asset(asset: str, limits: InputParams) -> None:
    """A collateral symbol as the venue writes them (``inputs.asset_symbol``: 'usdc' is not
    'USDC'), else UNKNOWN_ASSET at once. A symbol nobody prices or lists yet is held for them
    (``check_transfer``)."""
    if re.fullmatch(limits.asset_symbol, asset) is None:
        raise InputRejected(
            DlqReason.UNKNOWN_ASSET,
            f"{asset[:80]!r} is not a collateral symbol ({limits.asset_symbol})",
        )


def check_transfer(transfer: CollateralTransfer, market: MarketState) -> None:
    """A transfer that may be applied (checks in the module's order)."""
    limits = market.params.inputs
    check_ids(
        limits,
        transfer_id=transfer.transfer_id,
        account=transfer.account,
        sub_account=transfer.sub_account,
    )
    check_time(transfer.ts, market, limits)
    check_asset(transfer.asset, limits)
    if not is_known_asset(transfer.asset, market):
        raise AwaitingReference(
            DlqReason.UNKNOWN_ASSET, f"{transfer.asset} is neither priced nor listed"
        )
    params = market.params
    stable = transfer.asset == params.settlement_currency or transfer.asset in params.stablecoins
    price = 1.0 if stable else market.marks.get(transfer.asset)
    if price is not None:
        what = f"transfer of {transfer.amount:g} {transfer.asset}"
        _check_notional(abs(transfer.amount) * price, transfer.asset, limits, what)
