"""Value every line of one asset (spot and lending holdings on every chain, perps) at a price.

Grouping by asset is what lets liquidation prices move all exposure to an asset together, and
what lets a what-if or a solver revalue one asset without touching the rest of the book.
Holdings are valued in `holdings`, perps in `perps`; `Sides`, `LineValue` and their
constructors live in `lines` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from aggregator.valuation.holdings import (
    HoldingLines,
    HoldingPricing,
    value_curve_holdings,
    value_linear_holdings,
)
from aggregator.valuation.lines import (
    ZERO_SIDES,
    LineValue,
    Sides,
    new_instance,
    new_line,
    new_sides,
    slot_setters,
)
from aggregator.valuation.market import Market, confidence_band
from aggregator.valuation.model import Holding, Perp
from aggregator.valuation.perps import PerpLines, PerpTermRow, value_perps

__all__ = [
    "ZERO_SIDES",
    "AssetExposure",
    "ExposureValue",
    "LineValue",
    "PerpTerm",
    "PriceSensitivity",
    "Sides",
    "group_by_asset",
    "new_line",
    "new_sides",
    "value_exposure",
]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class AssetExposure:
    """Every line of one asset in a book, with their positions in the portfolio."""

    asset: str
    holdings: HoldingLines
    perps: PerpLines

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


_EXPOSURE_ASSET, _EXPOSURE_HOLDINGS, _EXPOSURE_PERPS = slot_setters(AssetExposure)


def _new_exposure(asset: str, holdings: HoldingLines, perps: PerpLines) -> AssetExposure:
    exposure: AssetExposure = new_instance(AssetExposure)
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
    perp_terms: tuple[PerpTermRow, ...]
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
) = slot_setters(ExposureValue)


def _exposure_value(
    collateral_init: Decimal,
    collateral_maint: Decimal,
    requirement_init: Decimal,
    requirement_maint: Decimal,
    equity: Decimal,
    collateral_value: Decimal,
    band_width: Decimal,
    units: tuple[Decimal, Decimal, Decimal, Decimal],
    perp_terms: tuple[PerpTermRow, ...],
    weighted: bool,
    lines: tuple[LineValue, ...],
) -> ExposureValue:
    """`ExposureValue(...)` without the per-field setattr."""
    value: ExposureValue = new_instance(ExposureValue)
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
    lines: list[LineValue] = []
    units_ci = units_cm = units_li = units_lm = _ZERO
    equity = collateral_value = _ZERO

    if holdings:
        pricing: HoldingPricing = (
            symbol,
            p,
            quote.valid,
            oracle,
            asset_price,
            liability_price,
            weighted,
        )
        value_holdings = (
            value_linear_holdings if weighted and quote.linear else value_curve_holdings
        )
        totals = value_holdings(market, holdings, pricing, lines if detail else None)
        units_ci, units_cm, units_li, units_lm, equity, collateral_value = totals

    coll_i = asset_price * units_ci
    coll_m = asset_price * units_cm
    req_i = liability_price * units_li
    req_m = liability_price * units_lm
    if not weighted:
        coll_i, coll_m, req_i, req_m = coll_i - req_i, coll_m - req_m, _ZERO, _ZERO

    terms: tuple[PerpTermRow, ...] = ()
    if exposure.perps:
        coll_i, coll_m, req_i, req_m, equity, terms = value_perps(
            market,
            symbol,
            exposure.perps,
            p,
            weighted,
            coll_i,
            coll_m,
            req_i,
            req_m,
            equity,
            lines if detail else None,
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
        terms,
        weighted,
        tuple(lines),
    )


def _owes(exposure: AssetExposure) -> bool:
    return any(h.amount < 0 for _, h in exposure.holdings) or bool(exposure.perps)
