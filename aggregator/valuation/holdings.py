"""Value the holdings (spot and lending lines, on every chain) of one asset at a price.

Two ways, same numbers as the rules' formulas: one pass when the asset's weight curves are
linear, and a sorted fill along the curves otherwise (size adjustment, tiers) or when the book
is valued unweighted. Both return the group's price-independent units, so the caller turns
them into sides at any adjusted price.
"""

from __future__ import annotations

from decimal import Decimal

from aggregator.valuation.lines import ZERO_SIDES, LineValue, new_line, new_sides
from aggregator.valuation.market import LineFactors, Market
from aggregator.valuation.model import Holding
from aggregator.valuation.weights import fill_curve, fill_curve_pair

_ZERO = Decimal(0)

HoldingLines = tuple[tuple[int, Holding], ...]
"""An asset's holdings, each with its position in the portfolio."""

HoldingPricing = tuple[str, Decimal, bool, bool, Decimal, Decimal, bool]
"""What every holding of a group is valued with: asset, price, price valid, whether the price
is the oracle's (the market's prepared unit prices then apply), the adjusted asset and
liability prices, and whether the book is weighted (standard mode). A plain tuple: it is built
once per group on the hot path."""

HoldingTotals = tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]
"""Units (collateral init, maint, liability init, maint), equity and collateral value."""


def holding_line(
    pricing: HoldingPricing,
    index: int,
    holding: Holding,
    mark: Decimal,
    factors: LineFactors,
    units_init: Decimal,
    units_maint: Decimal,
) -> LineValue:
    """The `LineValue` of holding `index` whose slice got `units_init` / `units_maint` units
    (times the adjusted price: its sides). Its effective weight is the contribution per unit
    of adjusted value, `|side| / (|amount| * price_used)` (0 for a line of no value)."""
    asset, price, valid, oracle, asset_price, liability_price, weighted = pricing
    amount = holding.amount
    if amount >= _ZERO:  # against a Decimal zero: no int to convert on every line
        unit = factors.collateral_unit if oracle else asset_price * factors.collateral_factor
        side_init = asset_price * units_init
        side_maint = asset_price * units_maint
        collateral = new_sides(side_init, side_maint)
        requirement = ZERO_SIDES
    else:
        unit = factors.liability_unit if oracle else liability_price * factors.liability_factor
        side_init = liability_price * units_init
        side_maint = liability_price * units_maint
        if weighted:
            collateral = ZERO_SIDES
            requirement = new_sides(side_init, side_maint)
        else:
            # Unweighted, a liability counts negative on the collateral side, with no weight.
            collateral = new_sides(-side_init, -side_maint)
            requirement = ZERO_SIDES
            side_init = side_maint = _ZERO
    base_value = abs(amount) * unit
    if base_value != 0:
        weight = new_sides(abs(side_init) / base_value, abs(side_maint) / base_value)
    else:
        weight = ZERO_SIDES
    return new_line(
        "holding",
        index,
        holding.chain,
        holding.venue,
        asset,
        amount,
        price,
        valid,
        mark,
        unit,
        factors.buffer,
        weight,
        collateral,
        requirement,
    )


def value_linear_holdings(
    market: Market,
    holdings: HoldingLines,
    pricing: HoldingPricing,
    lines: list[LineValue] | None,
) -> HoldingTotals:
    """Weighted holdings of an asset whose weight curves are linear, in one pass: a linear
    curve gives each slice `unit * amount * weight` whatever the other lines are, so every
    line is valued and the units summed in input order. Appends the lines to `lines`
    (when given).
    May raise: KeyError if a line names a chain absent from the market.
    """
    asset, p, valid, _, _, _, _ = pricing
    factors = market.factors[asset]  # chain -> LineFactors
    w_init, w_maint, l_init, l_maint = market.quotes[asset].weights
    units_ci = units_cm = units_li = units_lm = _ZERO
    equity = collateral_value = _ZERO
    for index, holding in holdings:
        f = factors[holding.chain]
        _, collateral_factor, liability_factor, _, _, stale = f
        amount = holding.amount
        mark = amount * p
        if amount >= 0:
            if valid:
                slice_units = collateral_factor * amount
                u_maint = slice_units * w_maint
                u_init = _ZERO if stale else slice_units * w_init
                equity += mark
                if amount > 0:
                    collateral_value += mark
            else:
                u_init = u_maint = _ZERO
            units_ci += u_init
            units_cm += u_maint
        else:
            slice_units = liability_factor * -amount
            u_init = slice_units * l_init
            u_maint = slice_units * l_maint
            units_li += u_init
            units_lm += u_maint
            equity += mark
        if lines is not None:
            lines.append(holding_line(pricing, index, holding, mark, f, u_init, u_maint))
    return units_ci, units_cm, units_li, units_lm, equity, collateral_value


def value_curve_holdings(
    market: Market,
    holdings: HoldingLines,
    pricing: HoldingPricing,
    lines: list[LineValue] | None,
) -> HoldingTotals:
    """The holdings of an asset whose weight curves are not linear (size adjustment, tiers)
    or that is valued unweighted: slices are filled along the curves (`fill_curve`), then
    each line gets its share. Appends the lines to `lines` (when given).
    May raise: KeyError if a line names a chain absent from the market.
    """
    asset, p, valid, _, _, _, weighted = pricing
    factors = market.factors[asset]
    line_factors = [factors[h.chain] for _, h in holdings]
    # Slices carry per-line factors; multiplied by the adjusted price they are unit values.
    coll_init: list[tuple[Decimal, Decimal]] = []
    coll_maint: list[tuple[Decimal, Decimal]] = []
    liab: list[tuple[Decimal, Decimal]] = []
    for (_, holding), f in zip(holdings, line_factors, strict=True):
        amount = holding.amount
        if amount >= 0:
            factor = f.collateral_factor if valid else _ZERO
            coll_maint.append((amount, factor))
            coll_init.append((amount, _ZERO if f.stale else factor))
        else:
            liab.append((-amount, f.liability_factor))
    if weighted:
        curves = market.curves[asset]
        if coll_init == coll_maint:  # no stale chain: both sides fill the same slices
            ci, cm = fill_curve_pair(coll_maint, curves.collateral_init, curves.collateral_maint)
        else:
            ci = fill_curve(coll_init, curves.collateral_init)
            cm = fill_curve(coll_maint, curves.collateral_maint)
        li, lm = fill_curve_pair(liab, curves.liability_init, curves.liability_maint)
    else:
        ci = [f * amount for amount, f in coll_init]
        cm = [f * amount for amount, f in coll_maint]
        li = [f * amount for amount, f in liab]
        lm = li
    units_ci = units_cm = units_li = units_lm = _ZERO
    for x in ci:
        units_ci += x
    for x in cm:
        units_cm += x
    for x in li:
        units_li += x
    for x in lm:
        units_lm += x

    equity = collateral_value = _ZERO
    ai = lj = 0
    for (index, holding), f in zip(holdings, line_factors, strict=True):
        amount = holding.amount
        mark = amount * p
        if amount < 0 or valid:
            equity += mark
            if amount > 0:
                collateral_value += mark
        if lines is None:
            continue
        if amount >= 0:
            u_init, u_maint = ci[ai], cm[ai]
            ai += 1
        else:
            u_init, u_maint = li[lj], lm[lj]
            lj += 1
        lines.append(holding_line(pricing, index, holding, mark, f, u_init, u_maint))
    return units_ci, units_cm, units_li, units_lm, equity, collateral_value
