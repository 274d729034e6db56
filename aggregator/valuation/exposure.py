"""Value every line of one asset (spot and lending holdings on every chain, perps) at a price.

Grouping by asset is what lets liquidation prices move all exposure to an asset together, and
what lets a what-if or a solver revalue one asset without touching the rest of the book.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Literal

from aggregator.valuation.market import Market, confidence_band
from aggregator.valuation.model import Holding, Perp
from aggregator.valuation.weights import fill_curve, fill_curve_pair, perp_margin_ratios

_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Sides:
    """A quantity on the initial and on the maintenance side."""

    init: Decimal
    maint: Decimal


ZERO_SIDES = Sides(_ZERO, _ZERO)

# Valuing a book builds a few dozen frozen dataclasses per account. Their generated __init__
# sets every field through `object.__setattr__` (the price of `frozen=True`), which is about
# half the cost of building one; the constructors below fill the slots directly instead and
# give objects equal to the class's own constructor (tested field by field).
_new: Callable[[type[Any]], Any] = object.__new__


def _slot_setters(cls: type[Any]) -> tuple[Callable[[Any, Any], None], ...]:
    return tuple(cls.__dict__[f.name].__set__ for f in fields(cls))


_SIDES_INIT, _SIDES_MAINT = _slot_setters(Sides)


def new_sides(init: Decimal, maint: Decimal) -> Sides:
    """`Sides(init, maint)`, built without the frozen dataclass's per-field setattr."""
    sides: Sides = _new(Sides)
    _SIDES_INIT(sides, init)
    _SIDES_MAINT(sides, maint)
    return sides


@dataclass(frozen=True, slots=True)
class LineValue:
    """How one holding or perp was valued.

    `value` is the mark value (`q * p` for a holding, unrealized pnl for a perp); `price_used`
    is the adjusted price (`p_a*(1-b)` for collateral, `p_l*(1+b)` for a liability, the mark
    for a perp); `weight` the effective weight per side (asset or liability weight after size
    and tiers; for a perp the margin ratio); `collateral` and `requirement` its contributions.
    """

    kind: Literal["holding", "perp"]
    index: int  # position in Portfolio.holdings or Portfolio.perps
    chain: str
    venue: str
    asset: str
    amount: Decimal  # holding amount, or perp base
    price: Decimal
    price_valid: bool
    value: Decimal
    price_used: Decimal
    buffer: Decimal
    weight: Sides
    collateral: Sides
    requirement: Sides
    notional: Decimal | None = None
    pnl: Decimal | None = None


(
    _L_KIND,
    _L_INDEX,
    _L_CHAIN,
    _L_VENUE,
    _L_ASSET,
    _L_AMOUNT,
    _L_PRICE,
    _L_VALID,
    _L_VALUE,
    _L_USED,
    _L_BUFFER,
    _L_WEIGHT,
    _L_COLLATERAL,
    _L_REQUIREMENT,
    _L_NOTIONAL,
    _L_PNL,
) = _slot_setters(LineValue)


def new_line(
    kind: Literal["holding", "perp"],
    index: int,
    chain: str,
    venue: str,
    asset: str,
    amount: Decimal,
    price: Decimal,
    price_valid: bool,
    value: Decimal,
    price_used: Decimal,
    buffer: Decimal,
    weight: Sides,
    collateral: Sides,
    requirement: Sides,
    notional: Decimal | None = None,
    pnl: Decimal | None = None,
) -> LineValue:
    """`LineValue(...)` (same arguments), built without the per-field setattr."""
    line: LineValue = _new(LineValue)
    _L_KIND(line, kind)
    _L_INDEX(line, index)
    _L_CHAIN(line, chain)
    _L_VENUE(line, venue)
    _L_ASSET(line, asset)
    _L_AMOUNT(line, amount)
    _L_PRICE(line, price)
    _L_VALID(line, price_valid)
    _L_VALUE(line, value)
    _L_USED(line, price_used)
    _L_BUFFER(line, buffer)
    _L_WEIGHT(line, weight)
    _L_COLLATERAL(line, collateral)
    _L_REQUIREMENT(line, requirement)
    _L_NOTIONAL(line, notional)
    _L_PNL(line, pnl)
    return line


@dataclass(frozen=True, slots=True)
class AssetExposure:
    """Every line of one asset in a book, with their positions in the portfolio."""

    asset: str
    holdings: tuple[tuple[int, Holding], ...]
    perps: tuple[tuple[int, Perp], ...]

    def net_quantity(self) -> Decimal:
        """Signed tokens of price exposure: holdings plus perp base."""
        return sum((h.amount for _, h in self.holdings), _ZERO) + sum(
            (p.base for _, p in self.perps), _ZERO
        )

    def gross_quantity(self) -> Decimal:
        """Tokens of exposure without netting."""
        return sum((abs(h.amount) for _, h in self.holdings), _ZERO) + sum(
            (abs(p.base) for _, p in self.perps), _ZERO
        )


_EXPOSURE_ASSET, _EXPOSURE_HOLDINGS, _EXPOSURE_PERPS = _slot_setters(AssetExposure)


def _new_exposure(
    asset: str, holdings: tuple[tuple[int, Holding], ...], perps: tuple[tuple[int, Perp], ...]
) -> AssetExposure:
    exposure: AssetExposure = _new(AssetExposure)
    _EXPOSURE_ASSET(exposure, asset)
    _EXPOSURE_HOLDINGS(exposure, holdings)
    _EXPOSURE_PERPS(exposure, perps)
    return exposure


def group_by_asset(holdings: Iterable[Holding], perps: Iterable[Perp]) -> dict[str, AssetExposure]:
    """Group a book's lines by asset, keeping each line's index. Groups come in the order
    their asset first appears among the holdings, then among the perps."""
    by_holding: dict[str, list[tuple[int, Holding]]] = {}
    by_perp: dict[str, list[tuple[int, Perp]]] = {}
    for i, holding in enumerate(holdings):
        lines = by_holding.get(holding.asset)
        if lines is None:
            by_holding[holding.asset] = [(i, holding)]
        else:
            lines.append((i, holding))
    for i, perp in enumerate(perps):
        perp_lines = by_perp.get(perp.asset)
        if perp_lines is None:
            by_perp[perp.asset] = [(i, perp)]
        else:
            perp_lines.append((i, perp))
    groups: dict[str, AssetExposure] = {}
    for asset, lines in by_holding.items():
        groups[asset] = _new_exposure(asset, tuple(lines), tuple(by_perp.pop(asset, ())))
    for asset, perp_lines in by_perp.items():
        groups[asset] = _new_exposure(asset, (), tuple(perp_lines))
    return groups


@dataclass(frozen=True, slots=True)
class PerpTerm:
    """A perp's price-independent parameters: `ratio` is margin ratio plus latency buffer per
    side (0 in portfolio mode), `gain_weight` the pnl weight per side (0 where it cannot count:
    invalid price, or the init side of a stale chain)."""

    base: Decimal
    entry: Decimal
    ratio: Sides
    gain_weight: Sides


@dataclass(frozen=True, slots=True)
class PriceSensitivity:
    """An asset group's value as a function of its price alone, validity held fixed.

    Ranking lines by unit value does not depend on the price (every unit value is the same
    adjusted price times a per-line factor), so collateral is `p_a(p) * collateral_units` and
    spot liabilities `p_l(p) * liability_units` with constant units; perps add their own
    piecewise-linear terms. This is what makes liquidation prices exact and cheap.
    """

    band_width: Decimal
    collateral_units: Sides
    liability_units: Sides
    perps: tuple[PerpTerm, ...]
    weighted: bool

    def sides_at(self, price: Decimal) -> tuple[Sides, Sides]:
        """(collateral, requirement) of the group at `price`."""
        band = confidence_band(price, self.band_width)
        asset_price = price - band
        liability_price = price + band
        coll_i = asset_price * self.collateral_units.init
        coll_m = asset_price * self.collateral_units.maint
        req_i = liability_price * self.liability_units.init
        req_m = liability_price * self.liability_units.maint
        if not self.weighted:
            coll_i, coll_m, req_i, req_m = coll_i - req_i, coll_m - req_m, _ZERO, _ZERO
        for term in self.perps:
            pnl = term.base * (price - term.entry)
            if pnl > 0:
                coll_i += pnl * term.gain_weight.init
                coll_m += pnl * term.gain_weight.maint
            elif self.weighted:
                req_i -= pnl
                req_m -= pnl
            else:
                coll_i += pnl
                coll_m += pnl
            if self.weighted:
                notional = abs(term.base) * price
                req_i += notional * term.ratio.init
                req_m += notional * term.ratio.maint
        return Sides(coll_i, coll_m), Sides(req_i, req_m)

    def health_maint_at(self, price: Decimal) -> Decimal:
        """The group's contribution to `health.maint` at `price`."""
        collateral, requirement = self.sides_at(price)
        return collateral.maint - requirement.maint


@dataclass(frozen=True, slots=True)
class ExposureValue:
    """Totals of one asset's lines (and the lines, when asked for).

    The sides are kept as plain numbers (`collateral` and `requirement` give them as
    `Sides`); `units` are the price-independent collateral and liability units (init, maint,
    init, maint) and `perp_terms` the perps' `PerpTerm`s as plain tuples: `sensitivity` is
    built from them only when a solver asks for it.
    """

    collateral_init: Decimal
    collateral_maint: Decimal
    requirement_init: Decimal
    requirement_maint: Decimal
    equity: Decimal
    collateral_value: Decimal
    band_width: Decimal
    units: tuple[Decimal, Decimal, Decimal, Decimal]
    perp_terms: tuple[tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal], ...]
    weighted: bool
    lines: tuple[LineValue, ...] = ()

    @property
    def collateral(self) -> Sides:
        """Weighted collateral (standard mode) or net liquidation value, per side."""
        return Sides(self.collateral_init, self.collateral_maint)

    @property
    def requirement(self) -> Sides:
        """Requirement per side (0 in portfolio mode)."""
        return Sides(self.requirement_init, self.requirement_maint)

    @property
    def health_maint(self) -> Decimal:
        """This asset's contribution to `health.maint`."""
        return self.collateral_maint - self.requirement_maint

    @property
    def sensitivity(self) -> PriceSensitivity:
        """The group's value as a function of its price alone (see `PriceSensitivity`)."""
        ci, cm, li, lm = self.units
        return PriceSensitivity(
            self.band_width,
            Sides(ci, cm),
            Sides(li, lm),
            tuple(
                PerpTerm(base, entry, Sides(ri, rm), Sides(gi, gm))
                for base, entry, ri, rm, gi, gm in self.perp_terms
            ),
            self.weighted,
        )


(
    _EV_COLLATERAL_INIT,
    _EV_COLLATERAL_MAINT,
    _EV_REQUIREMENT_INIT,
    _EV_REQUIREMENT_MAINT,
    _EV_EQUITY,
    _EV_COLLATERAL_VALUE,
    _EV_BAND_WIDTH,
    _EV_UNITS,
    _EV_PERP_TERMS,
    _EV_WEIGHTED,
    _EV_LINES,
) = _slot_setters(ExposureValue)


def _exposure_value(
    collateral_init: Decimal,
    collateral_maint: Decimal,
    requirement_init: Decimal,
    requirement_maint: Decimal,
    equity: Decimal,
    collateral_value: Decimal,
    band_width: Decimal,
    units: tuple[Decimal, Decimal, Decimal, Decimal],
    perp_terms: tuple[tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal], ...],
    weighted: bool,
    lines: tuple[LineValue, ...],
) -> ExposureValue:
    """`ExposureValue(...)` without the per-field setattr."""
    value: ExposureValue = _new(ExposureValue)
    _EV_COLLATERAL_INIT(value, collateral_init)
    _EV_COLLATERAL_MAINT(value, collateral_maint)
    _EV_REQUIREMENT_INIT(value, requirement_init)
    _EV_REQUIREMENT_MAINT(value, requirement_maint)
    _EV_EQUITY(value, equity)
    _EV_COLLATERAL_VALUE(value, collateral_value)
    _EV_BAND_WIDTH(value, band_width)
    _EV_UNITS(value, units)
    _EV_PERP_TERMS(value, perp_terms)
    _EV_WEIGHTED(value, weighted)
    _EV_LINES(value, lines)
    return value


def value_exposure(
    market: Market,
    exposure: AssetExposure,
    price: Decimal | None = None,
    *,
    weighted: bool = True,
    detail: bool = True,
) -> ExposureValue:
    """Value an asset's lines at `price` (default: its oracle price), validity held fixed.

    `weighted=True` is standard mode (weights, tiers, size adjustment, perp margin);
    `weighted=False` values at buffered prices only (portfolio mode's net liquidation value:
    liabilities count negative on the collateral side, perps add pnl, no requirement).
    Must run at the engine's precision (`evaluate_in_market` sets it). The figures the market
    prepared once (adjusted prices, `1 -/+ b`, unit prices) are the ones the rules' formulas
    give here, so every number is the same, operation for operation.
    May raise: KeyError if a line names a chain or asset absent from the market;
    ValueError if the asset has no price while a liability or perp needs one.
    """
    symbol = exposure.asset
    quote = market.quotes[symbol]
    holdings = exposure.holdings
    if price is None:
        if quote.price <= 0 and _owes(exposure):
            raise ValueError(f"{symbol}: a liability or perp cannot be valued without a price")
        p = quote.price
        asset_price = quote.asset_price
        liability_price = quote.liability_price
    else:
        p = price
        band = confidence_band(p, quote.band_width)
        asset_price = p - band
        liability_price = p + band
    oracle = price is None
    valid = quote.valid
    factors = market.factors[symbol]  # chain -> LineFactors
    lines: list[LineValue] = []
    units_ci = units_cm = units_li = units_lm = _ZERO
    equity = collateral_value = _ZERO

    if weighted and quote.linear:
        # A linear curve gives each slice `unit * amount * weight` whatever the other lines
        # are, so a single pass values every line and sums the units in input order.
        w_init, w_maint, l_init, l_maint = quote.weights
        for index, holding in holdings:
            b, collateral_factor, liability_factor, collateral_unit, liability_unit, stale = (
                factors[holding.chain]
            )
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
                if not detail:
                    continue
                unit = collateral_unit if oracle else asset_price * collateral_factor
                side_init = asset_price * u_init
                side_maint = asset_price * u_maint
                collateral_sides = new_sides(side_init, side_maint)
                requirement_sides = ZERO_SIDES
            else:
                slice_units = liability_factor * -amount
                u_init = slice_units * l_init
                u_maint = slice_units * l_maint
                units_li += u_init
                units_lm += u_maint
                equity += mark
                if not detail:
                    continue
                unit = liability_unit if oracle else liability_price * liability_factor
                side_init = liability_price * u_init
                side_maint = liability_price * u_maint
                collateral_sides = ZERO_SIDES
                requirement_sides = new_sides(side_init, side_maint)
            # The effective weight: contribution per unit of adjusted value.
            base_value = abs(amount) * unit
            if base_value != 0:
                weight = new_sides(abs(side_init) / base_value, abs(side_maint) / base_value)
            else:
                weight = ZERO_SIDES
            lines.append(
                new_line(
                    "holding",
                    index,
                    holding.chain,
                    holding.venue,
                    symbol,
                    amount,
                    p,
                    valid,
                    mark,
                    unit,
                    b,
                    weight,
                    collateral_sides,
                    requirement_sides,
                )
            )
    elif holdings:
        units = _value_curve_holdings(
            market, exposure, p, asset_price, liability_price, oracle, weighted, detail, lines
        )
        units_ci, units_cm, units_li, units_lm, equity, collateral_value = units

    coll_i = asset_price * units_ci
    coll_m = asset_price * units_cm
    req_i = liability_price * units_li
    req_m = liability_price * units_lm
    if not weighted:
        coll_i, coll_m, req_i, req_m = coll_i - req_i, coll_m - req_m, _ZERO, _ZERO

    # Perps as (base, entry, ratio init, ratio maint, gain weight init, gain weight maint):
    # the ratio is the margin ratio plus the buffer (0 in portfolio mode), the gain weight the
    # pnl weight where a gain counts. Each perp's line gets its own sides.
    terms: list[tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]] = []
    if exposure.perps:
        params = market.params
        pnl_init, pnl_maint = params.pnl_weight_init, params.pnl_weight_maint
        for index, perp in exposure.perps:
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
            if detail:
                lines.append(
                    new_line(
                        "perp",
                        index,
                        perp.chain,
                        perp.venue,
                        symbol,
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

    return _exposure_value(
        coll_i,
        coll_m,
        req_i,
        req_m,
        equity,
        collateral_value,
        quote.band_width,
        (units_ci, units_cm, units_li, units_lm),
        tuple(terms),
        weighted,
        tuple(lines),
    )


def _value_curve_holdings(
    market: Market,
    exposure: AssetExposure,
    p: Decimal,
    asset_price: Decimal,
    liability_price: Decimal,
    oracle: bool,
    weighted: bool,
    detail: bool,
    lines: list[LineValue],
) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]:
    """The holdings of a group whose weight curves are not linear (size adjustment, tiers)
    or that is valued unweighted: slices are filled along the curves (`fill_curve`), then
    each line gets its share. Appends the lines (when `detail`) to `lines`; returns the units
    (collateral init, maint, liability init, maint), equity and collateral value."""
    symbol = exposure.asset
    holdings = exposure.holdings
    valid = market.quotes[symbol].valid
    factors = market.factors[symbol]
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
        curves = market.curves[symbol]
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
        if not detail:
            continue
        if amount >= 0:
            unit = f.collateral_unit if oracle else asset_price * f.collateral_factor
            side_init = asset_price * ci[ai]
            side_maint = asset_price * cm[ai]
            ai += 1
            collateral_sides = new_sides(side_init, side_maint)
            requirement_sides = ZERO_SIDES
        else:
            unit = f.liability_unit if oracle else liability_price * f.liability_factor
            r_init = liability_price * li[lj]
            r_maint = liability_price * lm[lj]
            lj += 1
            if weighted:
                collateral_sides = ZERO_SIDES
                requirement_sides = new_sides(r_init, r_maint)
                side_init, side_maint = r_init, r_maint
            else:
                collateral_sides = new_sides(-r_init, -r_maint)
                requirement_sides = ZERO_SIDES
                side_init = side_maint = _ZERO
        base_value = abs(amount) * unit
        if base_value != 0:
            weight = new_sides(abs(side_init) / base_value, abs(side_maint) / base_value)
        else:
            weight = ZERO_SIDES
        lines.append(
            new_line(
                "holding",
                index,
                holding.chain,
                holding.venue,
                symbol,
                amount,
                p,
                valid,
                mark,
                unit,
                f.buffer,
                weight,
                collateral_sides,
                requirement_sides,
            )
        )
    return units_ci, units_cm, units_li, units_lm, equity, collateral_value


def _owes(exposure: AssetExposure) -> bool:
    return any(h.amount < 0 for _, h in exposure.holdings) or bool(exposure.perps)
