"""A straightforward reference of the standard-mode valuation, written from the rules in
docs/risk.md without any of the engine's shortcuts (no prepared market figures, no shared
square roots, no skipped size adjustments): every formula evaluated as written, at the
engine's precision. The optimised engine must give the very same numbers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import partial
from typing import Any

from aggregator.margin import Holding, Perp, Portfolio
from aggregator.valuation.market import (
    CONF_BAND_CAP,
    chain_freshness,
    latency_buffer,
    price_state,
)
from aggregator.valuation.model import PRECISION, Tier

ZERO = Decimal(0)
ONE = Decimal(1)


def tiered(amount: Decimal, tiers: tuple[Tier, ...]) -> Decimal:
    counted = ZERO
    for tier in tiers:
        if amount <= tier.start:
            break
        top = amount if tier.end is None or amount < tier.end else tier.end
        counted += (top - tier.start) * tier.ratio
    return counted


def asset_raw(weight: Decimal, imf: Decimal, tiers: tuple[Tier, ...], size: Decimal) -> Decimal:
    aw = weight
    if imf > 0 and size > 0:
        adjusted = Decimal("1.1") / (ONE + imf * size.sqrt())
        aw = adjusted if adjusted < weight else weight
    return tiered(size, tiers) * aw


def asset_curve(weight: Decimal, imf: Decimal, tiers: tuple[Tier, ...], size: Decimal) -> Decimal:
    if size <= 0:
        return ZERO
    if imf <= 0:
        return tiered(size, tiers) * weight
    best = asset_raw(weight, imf, tiers, size)
    default = len(tiers) == 1 and tiers[0].end is None and tiers[0].ratio == ONE
    if default or weight <= 0:
        return best
    points = [t.start for t in tiers] + [t.end for t in tiers if t.end]
    root = (Decimal("1.1") / weight - ONE) / imf
    points.append(root * root)
    for point in points:
        if ZERO < point < size:
            value = asset_raw(weight, imf, tiers, point)
            if value > best:
                best = value
    return best


def liability_curve(weight: Decimal, imf: Decimal, size: Decimal) -> Decimal:
    if size <= 0:
        return ZERO
    lw = weight
    if imf > 0:
        adjusted = Decimal("0.8") * weight + imf * size.sqrt()
        lw = adjusted if adjusted > weight else weight
    return size * lw


def fill(
    slices: list[tuple[Decimal, Decimal]], curve: Any, linear: bool, weight: Decimal
) -> list[Decimal]:
    if linear:
        return [unit * amount * weight for amount, unit in slices]
    order = sorted(range(len(slices)), key=lambda i: slices[i][1], reverse=True)
    out = [ZERO] * len(slices)
    filled = level = ZERO
    for i in order:
        amount, unit = slices[i]
        filled += amount
        new_level = curve(filled)
        out[i] = unit * (new_level - level)
        level = new_level
    return out


def margin_ratio(ratio: Decimal, imf: Decimal, size: Decimal) -> Decimal:
    if imf <= 0 or size <= 0:
        return ratio
    scaled = imf * size.sqrt()
    return scaled if scaled > ratio else ratio


@dataclass
class Reference:
    """Totals and lines (as plain tuples of numbers) of a book in standard mode."""

    collateral: tuple[Decimal, Decimal]
    requirement: tuple[Decimal, Decimal]
    equity: Decimal
    collateral_value: Decimal
    lines: list[tuple[Any, ...]]


def reference_standard(portfolio: Portfolio) -> Reference:
    """Value `portfolio` (standard mode) straight from the rules."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return _reference(portfolio)


def _buffer(z: Decimal, sigma: Decimal, fresh: dict[str, Any], chain: str) -> Decimal:
    return latency_buffer(z, sigma, fresh[chain].horizon_seconds)


def _reference(pf: Portfolio) -> Reference:
    params = pf.params
    fresh = {name: chain_freshness(c, pf.as_of) for name, c in pf.chains.items()}
    groups: dict[str, tuple[list[tuple[int, Holding]], list[tuple[int, Perp]]]] = {}
    for i, h in enumerate(pf.holdings):
        groups.setdefault(h.asset, ([], []))[0].append((i, h))
    for i, p in enumerate(pf.perps):
        groups.setdefault(p.asset, ([], []))[1].append((i, p))
    totals = [ZERO, ZERO, ZERO, ZERO]
    equity_total = collateral_total = ZERO
    holding_lines: dict[int, tuple[Any, ...]] = {}
    perp_lines: dict[int, tuple[Any, ...]] = {}
    for symbol, (holdings, perps) in groups.items():
        risk = pf.assets[symbol]
        state = price_state(risk, pf.as_of, params)
        price, valid = state.price, state.valid
        cap = CONF_BAND_CAP * price
        band = state.band_width if state.band_width < cap else cap
        pa, pl = price - band, price + band

        buffer = partial(_buffer, params.latency_z, risk.volatility, fresh)

        coll_i: list[tuple[Decimal, Decimal]] = []
        coll_m: list[tuple[Decimal, Decimal]] = []
        liab: list[tuple[Decimal, Decimal]] = []
        for _, h in holdings:
            b = buffer(h.chain)
            if h.amount >= 0:
                factor = ONE - b if valid else ZERO
                coll_m.append((h.amount, factor))
                coll_i.append((h.amount, ZERO if fresh[h.chain].stale else factor))
            else:
                liab.append((-h.amount, ONE + b))
        default = len(risk.tiers) == 1 and risk.tiers[0].end is None and risk.tiers[0].ratio == ONE
        linear_a = risk.imf <= 0 and default
        linear_l = risk.imf <= 0
        w_i, w_m = risk.init_weight, risk.maint_weight
        l_i, l_m = risk.init_liability_weight, risk.maint_liability_weight
        imf, tiers = risk.imf, risk.tiers
        ci = fill(coll_i, partial(asset_curve, w_i, imf, tiers), linear_a, w_i)
        cm = fill(coll_m, partial(asset_curve, w_m, imf, tiers), linear_a, w_m)
        li = fill(liab, partial(liability_curve, l_i, imf), linear_l, l_i)
        lm = fill(liab, partial(liability_curve, l_m, imf), linear_l, l_m)
        c_i = pa * sum(ci, ZERO)
        c_m = pa * sum(cm, ZERO)
        r_i = pl * sum(li, ZERO)
        r_m = pl * sum(lm, ZERO)
        equity = collateral_value = ZERO
        for _, h in holdings:
            if h.amount < 0 or valid:
                equity += h.amount * price
                if h.amount > 0:
                    collateral_value += h.amount * price
        ai = lj = 0
        for index, h in holdings:
            b = buffer(h.chain)
            if h.amount >= 0:
                unit = pa * (ONE - b)
                side = (pa * ci[ai], pa * cm[ai])
                coll, req = side, (ZERO, ZERO)
                ai += 1
            else:
                unit = pl * (ONE + b)
                side = (pl * li[lj], pl * lm[lj])
                coll, req = (ZERO, ZERO), side
                lj += 1
            base = abs(h.amount) * unit
            weight = (abs(side[0]) / base, abs(side[1]) / base) if base != 0 else (ZERO, ZERO)
            holding_lines[index] = (
                h.amount,
                price,
                valid,
                h.amount * price,
                unit,
                b,
                weight,
                coll,
                req,
                None,
                None,
            )
        for index, p in perps:
            b = buffer(p.chain)
            size = abs(p.base)
            ratio = (margin_ratio(p.imr, p.imf, size) + b, margin_ratio(p.mmr, p.imf, size) + b)
            stale = fresh[p.chain].stale
            gain = (
                ZERO if stale or not valid else params.pnl_weight_init,
                params.pnl_weight_maint if valid else ZERO,
            )
            pnl = p.base * (price - p.entry_price)
            own_c, own_r = [ZERO, ZERO], [ZERO, ZERO]
            if pnl > 0:
                own_c = [pnl * gain[0], pnl * gain[1]]
                c_i += own_c[0]
                c_m += own_c[1]
            else:
                own_r = [ZERO - pnl, ZERO - pnl]
                r_i -= pnl
                r_m -= pnl
            notional = abs(p.base) * price
            own_r = [own_r[0] + notional * ratio[0], own_r[1] + notional * ratio[1]]
            r_i += notional * ratio[0]
            r_m += notional * ratio[1]
            if pnl < 0 or valid:
                equity += pnl
            perp_lines[index] = (
                p.base,
                price,
                valid,
                pnl,
                price,
                b,
                (ratio[0] - b, ratio[1] - b),
                tuple(own_c),
                tuple(own_r),
                notional,
                pnl,
            )
        totals = [totals[0] + c_i, totals[1] + c_m, totals[2] + r_i, totals[3] + r_m]
        equity_total += equity
        collateral_total += collateral_value
    lines = [holding_lines[i] for i in sorted(holding_lines)]
    lines += [perp_lines[i] for i in sorted(perp_lines)]
    return Reference(
        (totals[0], totals[1]), (totals[2], totals[3]), equity_total, collateral_total, lines
    )


def reference_text(value: Decimal) -> str:
    """The serializer's rule: round to 18 places half even, plain text, no trailing zeros."""
    with localcontext() as ctx:
        ctx.prec = 100
        rounded = value.quantize(Decimal(1).scaleb(-18))
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
