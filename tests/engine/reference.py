"""A plain, obviously-correct reference implementation of the margin model, one account at a time.

Loops over positions and scenarios, math-module Black-76, its own vol-surface and depth-curve
interpolation: everything written again from margin-model.md, so that the vectorised engine is
checked against an independent reading of the spec. Only the joint Student-t draws (data) are
shared with the engine.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from engine.instruments import InstrumentKind, parse_instrument
from engine.market import DepthCurve, MarketSnapshot, VolSurface
from engine.params import AssetClass, RiskParams
from engine.portfolio import Portfolio
from engine.shortfall import student_t_draws

YEAR = 365 * 86400.0


def norm_cdf(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def black(f: float, k: float, vol: float, t: float, call: bool) -> float:
    """Black-76 premium, zero discounting; intrinsic when t <= 0."""
    if t <= 0 or vol <= 0:
        return max(f - k, 0.0) if call else max(k - f, 0.0)
    sd = vol * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if call:
        return f * norm_cdf(d1) - k * norm_cdf(d2)
    return k * norm_cdf(-d2) - f * norm_cdf(-d1)


def black_delta(f: float, k: float, vol: float, t: float, call: bool) -> float:
    """dPremium/dF."""
    if t <= 0 or vol <= 0:
        if f == k:
            return 0.5 if call else -0.5
        return (1.0 if f > k else 0.0) if call else (-1.0 if f < k else 0.0)
    sd = vol * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    return norm_cdf(d1) if call else norm_cdf(d1) - 1.0


def surface_vol(s: VolSurface, t: float, k: float) -> float:
    """Linear in k (flat beyond), linear in total variance between expiries (flat beyond)."""
    exps = [float(x) for x in s.expiries]
    ks = [float(x) for x in s.log_moneyness]

    def row_vol(r: int) -> float:
        vols = [float(v) for v in s.vols[r]]
        if k <= ks[0]:
            return vols[0]
        if k >= ks[-1]:
            return vols[-1]
        for a in range(len(ks) - 1):
            if ks[a] <= k <= ks[a + 1]:
                w = (k - ks[a]) / (ks[a + 1] - ks[a])
                return vols[a] + w * (vols[a + 1] - vols[a])
        raise AssertionError

    if t <= exps[0]:
        return row_vol(0)
    if t >= exps[-1]:
        return row_vol(len(exps) - 1)
    for e in range(len(exps) - 1):
        if exps[e] <= t <= exps[e + 1]:
            v0, v1 = row_vol(e), row_vol(e + 1)
            w0, w1 = v0 * v0 * exps[e], v1 * v1 * exps[e + 1]
            w = (t - exps[e]) / (exps[e + 1] - exps[e])
            return math.sqrt((w0 + w * (w1 - w0)) / t)
    raise AssertionError


def slippage(bps: list[float], cum: list[float], q: float, beyond: float) -> float:
    """Average slippage (fraction) of q notional: the curve from (0, 0) linear between levels."""
    if q <= 0:
        return 0.0
    area, prev_d, prev_x = 0.0, 0.0, 0.0
    for x, d in zip(bps, cum, strict=True):
        if d <= prev_d:
            prev_x = x
            continue
        take = min(q, d) - prev_d
        if take > 0:
            frac_end = (prev_d + take - prev_d) / (d - prev_d)
            x_end = prev_x + frac_end * (x - prev_x)
            area += take * (prev_x + x_end) / 2.0
        if q <= d:
            return area / q / 1e4
        prev_d, prev_x = d, x
    area += (q - prev_d) * beyond * bps[-1]
    return area / q / 1e4


def scenarios(params: RiskParams, u: str) -> list[tuple[float, float, str, str]]:
    """(move, weight, vol state, role) per scenario of the underlying."""
    psr = params.psr_for(u)
    out = []
    for s in params.scenario_set.scenarios:
        m = s.move * psr if s.unit == "psr" else s.move
        if s.weight == "dampened":
            w = min(1.0, psr / abs(m)) if m != 0 else 1.0
        else:
            w = float(s.weight)
        out.append((m, w, s.vol.value, s.role.value))
    return out


def shocked(vol: float, t_years: float, params: RiskParams, state: str) -> float:
    """The scenario vol of an option."""
    p = params.vol_shock
    dte = max(t_years * 365.0, p.min_dte_days)
    e = p.exponent_short if dte <= p.ref_days else p.exponent_long
    scale = (p.ref_days / dte) ** e
    if state == "up":
        return max(vol * (1 + p.up * scale), p.up_floor)
    if state == "down":
        return max(vol * (1 - p.down * scale), p.down_floor)
    return vol


def asset_price(market: MarketSnapshot, params: RiskParams, asset: str) -> float:
    """Price of a collateral asset."""
    if asset in market.assets:
        return float(market.assets[asset].price)
    if asset in market.underlyings:
        return float(market.underlyings[asset].mark)
    assert asset == params.settlement_currency
    return 1.0


def reference_margin(
    portfolio: Portfolio, market: MarketSnapshot, params: RiskParams
) -> dict[str, Any]:
    """The margin of one account, computed the slow and plain way."""
    unds = sorted(market.underlyings)
    per: dict[str, dict[str, float]] = {}
    value_total, cost_total = 0.0, 0.0
    es_pnl: dict[str, list[tuple[float, float]]] = {}
    xs: dict[str, float] = {}
    for u in unds:
        um = market.underlyings[u]
        sc = scenarios(params, u)
        pnl = [0.0] * len(sc)
        delta = 0.0
        option_nets: dict[tuple[float, float], float] = {}
        basis_buckets: dict[float, float] = {}
        for pos in portfolio.positions:
            inst = parse_instrument(pos.instrument)
            if inst.underlying != u:
                continue
            t = 0.0 if inst.expiry is None else (inst.expiry - market.as_of) / YEAR
            fwd = um.mark * math.exp(um.basis * max(t, 0.0))
            if inst.kind is InstrumentKind.OPTION:
                assert inst.strike is not None and um.vol_surface is not None
                vol = surface_vol(um.vol_surface, max(t, 0.0), math.log(inst.strike / fwd))
                now = black(fwd, inst.strike, vol, t, inst.is_call)
                value_total += pos.qty * inst.contract_size * now
                for j, (m, _w, state, _r) in enumerate(sc):
                    v = black(
                        fwd * (1 + m), inst.strike, shocked(vol, t, params, state), t, inst.is_call
                    )
                    pnl[j] += pos.qty * inst.contract_size * (v - now)
                delta += (
                    pos.qty
                    * inst.contract_size
                    * fwd
                    * black_delta(fwd, inst.strike, vol, t, inst.is_call)
                )
                key = (inst.expiry or 0.0, inst.strike)
                option_nets[key] = option_nets.get(key, 0.0) + pos.qty * inst.contract_size
                continue
            mark = market.marks.get(pos.instrument, fwd)
            if inst.inverse:
                coins = pos.qty / pos.entry_price
                value_total += coins * mark
                cost_total += pos.qty
                unit = coins * mark
            else:
                value_total += pos.qty * inst.contract_size * mark
                cost_total += pos.qty * inst.contract_size * pos.entry_price
                unit = pos.qty * inst.contract_size * mark
            for j, (m, *_rest) in enumerate(sc):
                pnl[j] += unit * m
            delta += unit
            bucket = inst.expiry or 0.0
            basis_buckets[bucket] = basis_buckets.get(bucket, 0.0) + unit
        coin = portfolio.collateral.get(u, 0.0)
        if coin:
            price = asset_price(market, params, u)
            for j, (m, *_rest) in enumerate(sc):
                pnl[j] += coin * price * m
            delta += coin * price
            basis_buckets[0.0] = basis_buckets.get(0.0, 0.0) + coin * price
        losses = [-w * p for (m, w, _s, _r), p in zip(sc, pnl, strict=True)]
        worst = max(0.0, max(losses))
        down = max(0.0, max(lo for (m, *_), lo in zip(sc, losses, strict=True) if m <= 0))
        up = max(0.0, max(lo for (m, *_), lo in zip(sc, losses, strict=True) if m >= 0))
        two = min(down, up)
        x = (1.0 if down >= up else -1.0) * (worst - two)
        shorts = sum(max(-n, 0.0) for n in option_nets.values())
        c_short = params.contingencies.short_option * shorts * um.mark
        c_delta = params.contingencies.delta * abs(delta)
        longs_b = sum(max(v, 0.0) for v in basis_buckets.values())
        shorts_b = sum(max(-v, 0.0) for v in basis_buckets.values())
        c_basis = params.contingencies.basis * min(longs_b, shorts_b)
        liq = 0.0
        if um.depth is not None and delta != 0:
            side = um.depth.bid if delta > 0 else um.depth.ask
            liq = slippage(
                [float(b) for b in um.depth.bps],
                [float(c) for c in side],
                abs(delta),
                params.haircuts.beyond_last_level_multiplier,
            ) * abs(delta)
        per[u] = {
            "worst_loss": worst,
            "directional": x,
            "two_sided": two,
            "short_option": c_short,
            "delta": c_delta,
            "basis": c_basis,
            "contingencies": c_short + c_delta + c_basis,
            "liquidity_addon": liq,
            "delta_notional": delta,
        }
        xs[u] = x
        es_pnl[u] = sorted((m, p) for (m, _w, _s, r), p in zip(sc, pnl, strict=True) if r == "es")
    quad = sum(xs[a] * params.correlation.rho(a, b) * xs[b] for a in unds for b in unds)
    directional = max(
        math.sqrt(max(quad, 0.0)),
        (1 - params.correlation.max_credit) * sum(abs(v) for v in xs.values()),
    )
    scenario = directional + sum(p["two_sided"] + p["contingencies"] for p in per.values())
    es, var = _reference_es(unds, es_pnl, market, params)
    risk = max(scenario, es)
    liq_total = sum(p["liquidity_addon"] for p in per.values())
    im = risk + liq_total
    mm = params.margin.mm_risk_fraction * risk + params.margin.mm_liquidity_fraction * liq_total
    equity = value_total - cost_total
    ded_mm = ded_im = 0.0
    haircuts: dict[str, float] = {}
    for asset, bal in portfolio.collateral.items():
        price = asset_price(market, params, asset)
        equity += bal * price
        h = _haircut(asset, bal, price, market, params)
        haircuts[asset] = h
        ded_mm += abs(bal) * price * h
        ded_im += abs(bal) * price * min(1.0, params.haircuts.im_multiplier * h)
    return {
        "equity": equity,
        "equity_mm": equity - ded_mm,
        "equity_im": equity - ded_im,
        "im": im,
        "mm": mm,
        "scenario_requirement": scenario,
        "directional_total": directional,
        "es99": es,
        "var99": var,
        "liquidity_addon": liq_total,
        "underlyings": per,
        "haircuts": haircuts,
    }


def _haircut(
    asset: str, bal: float, price: float, market: MarketSnapshot, params: RiskParams
) -> float:
    """Maintenance haircut rate of one balance."""
    given = market.assets.get(asset)
    und = market.underlyings.get(asset)
    if given is not None:
        klass = AssetClass(str(given.asset_class).lower())
    elif und is not None:
        klass = AssetClass(str(und.asset_class).lower())
    elif asset == params.settlement_currency:
        klass = AssetClass.FIAT
    elif asset in params.stablecoins:
        klass = AssetClass.STABLECOIN
    elif asset in params.majors:
        klass = AssetClass.MAJOR
    else:
        klass = AssetClass.LONG_TAIL
    h = params.haircuts.base[klass]
    if klass is AssetClass.STABLECOIN and price < params.haircuts.depeg_threshold:
        h += 1 - price
    depth: DepthCurve | None = und.depth if und is not None else None
    if depth is not None:
        side = depth.bid if bal >= 0 else depth.ask
        h += slippage(
            [float(b) for b in depth.bps],
            [float(c) for c in side],
            abs(bal) * price,
            params.haircuts.beyond_last_level_multiplier,
        )
    return min(1.0, h)


def _reference_es(
    unds: list[str],
    es_pnl: dict[str, list[tuple[float, float]]],
    market: MarketSnapshot,
    params: RiskParams,
) -> tuple[float, float]:
    """ES_99 and VaR_99 by plain loops over the joint draws."""
    import numpy as np

    from engine.aggregation import correlation_matrix

    sp = params.shortfall
    rho = correlation_matrix(unds, params.correlation)
    draws = student_t_draws(rho, sp)
    horizon = math.sqrt(sp.horizon_days / 365.0)
    sigmas = []
    for u in unds:
        ewma = market.underlyings[u].ewma_vol
        floor = sp.floor_for(u)
        sigmas.append(floor if ewma is None else max(ewma, floor))
    joint = []
    for row in np.asarray(draws).tolist():
        total = 0.0
        for u, z, sigma in zip(unds, row, sigmas, strict=True):
            grid = es_pnl[u]
            m = min(max(z * sigma * horizon, grid[0][0]), grid[-1][0])
            for (m0, p0), (m1, p1) in itertools.pairwise(grid):
                if m0 <= m <= m1:
                    total += p0 + (m - m0) / (m1 - m0) * (p1 - p0)
                    break
        joint.append(total)
    joint.sort()
    k = max(1, math.ceil(len(joint) * (1 - sp.quantile) - 1e-9))
    tail = joint[:k]
    return max(0.0, -sum(tail) / k), max(0.0, -tail[-1])
