"""Value the perps of one asset at a price: unrealized pnl on the collateral side (weighted
where a gain counts), losses and margin on the requirement side (standard mode), or pnl alone
(portfolio mode's net liquidation value)."""

from __future__ import annotations

from decimal import Decimal

from aggregator.valuation.lines import ZERO_SIDES, LineValue, new_line, new_sides
from aggregator.valuation.market import Market
from aggregator.valuation.model import Perp
from aggregator.valuation.weights import perp_margin_ratios

_ZERO = Decimal(0)

PerpLines = tuple[tuple[int, Perp], ...]
"""An asset's perps, each with its position in the portfolio."""

PerpTermRow = tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]
"""A perp's price-independent parameters as a plain tuple: base, entry, ratio init, ratio
maint, gain weight init, gain weight maint (see `PerpTerm`)."""

PerpTotals = tuple[Decimal, Decimal, Decimal, Decimal, Decimal, tuple[PerpTermRow, ...]]
"""Collateral init, maint, requirement init, maint, equity, and each perp's terms."""


def value_perps(
    market: Market,
    asset: str,
    perps: PerpLines,
    p: Decimal,
    weighted: bool,
    coll_i: Decimal,
    coll_m: Decimal,
    req_i: Decimal,
    req_m: Decimal,
    equity: Decimal,
    lines: list[LineValue] | None,
) -> PerpTotals:
    """Add an asset's perps at price `p` to the group's running sides and equity (given,
    and returned with the perps added, one perp after the other in input order) and give
    each perp's terms: the ratio is the margin ratio plus the buffer (0 in portfolio mode),
    the gain weight the pnl weight where a gain counts. Appends the lines to `lines` (when
    given).
    May raise: KeyError if a perp names a chain absent from the market.
    """
    valid = market.quotes[asset].valid
    factors = market.factors[asset]
    params = market.params
    pnl_init, pnl_maint = params.pnl_weight_init, params.pnl_weight_maint
    terms: list[PerpTermRow] = []
    for index, perp in perps:
        f = factors[perp.chain]
        b = f.buffer
        base = perp.base
        if weighted:
            rate_i, rate_m = perp_margin_ratios(perp.imr, perp.mmr, perp.imf, abs(base))
            ratio_i = rate_i + b
            ratio_m = rate_m + b
        else:
            ratio_i = ratio_m = _ZERO
        gain_i = _ZERO if f.stale or not valid else pnl_init
        gain_m = pnl_maint if valid else _ZERO
        terms.append((base, perp.entry_price, ratio_i, ratio_m, gain_i, gain_m))
        pnl = base * (p - perp.entry_price)
        # A perp's own sides start from 0; adding to 0 is exact, so they are also the
        # increments of the group's sides.
        own_ci = own_cm = own_ri = own_rm = _ZERO
        if pnl > 0:
            own_ci = pnl * gain_i
            own_cm = pnl * gain_m
            coll_i += own_ci
            coll_m += own_cm
        elif weighted:
            own_ri = own_rm = _ZERO - pnl
            req_i -= pnl
            req_m -= pnl
        else:
            own_ci = own_cm = pnl
            coll_i += pnl
            coll_m += pnl
        notional = abs(base) * p
        if weighted:
            margin_i = notional * ratio_i
            margin_m = notional * ratio_m
            own_ri += margin_i
            own_rm += margin_m
            req_i += margin_i
            req_m += margin_m
        if pnl < 0 or valid:
            equity += pnl
        if lines is not None:
            lines.append(
                new_line(
                    "perp",
                    index,
                    perp.chain,
                    perp.venue,
                    asset,
                    base,
                    p,
                    valid,
                    pnl,
                    p,
                    b,
                    new_sides(ratio_i - b, ratio_m - b) if weighted else ZERO_SIDES,
                    new_sides(own_ci, own_cm),
                    new_sides(own_ri, own_rm),
                    notional,
                    pnl,
                )
            )
    return coll_i, coll_m, req_i, req_m, equity, tuple(terms)
