"""Value every line of one asset (spot and lending holdings on every chain, perps) at a price.

Grouping by asset is what lets liquidation prices move all exposure to an asset together, and
what lets a what-if or a solver revalue one asset without touching the rest of the book.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from aggregator.valuation.market import Market, confidence_band
from aggregator.valuation.model import Holding, Perp
from aggregator.valuation.weights import fill_curve, perp_margin_ratio

_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Sides:
    """A quantity on the initial and on the maintenance side."""

    init: Decimal
    maint: Decimal


ZERO_SIDES = Sides(_ZERO, _ZERO)


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


def group_by_asset(holdings: Iterable[Holding], perps: Iterable[Perp]) -> dict[str, AssetExposure]:
    """Group a book's lines by asset, keeping each line's index."""
    by_holding: dict[str, list[tuple[int, Holding]]] = {}
    by_perp: dict[str, list[tuple[int, Perp]]] = {}
    for i, holding in enumerate(holdings):
        by_holding.setdefault(holding.asset, []).append((i, holding))
    for i, perp in enumerate(perps):
        by_perp.setdefault(perp.asset, []).append((i, perp))
    return {
        asset: AssetExposure(asset, tuple(by_holding.get(asset, ())), tuple(by_perp.get(asset, ())))
        for asset in dict.fromkeys([*by_holding, *by_perp])
    }


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
    """Totals of one asset's lines (and the lines, when asked for)."""

    collateral: Sides
    requirement: Sides
    equity: Decimal
    collateral_value: Decimal
    sensitivity: PriceSensitivity
    lines: tuple[LineValue, ...] = ()

    @property
    def health_maint(self) -> Decimal:
        """This asset's contribution to `health.maint`."""
        return self.collateral.maint - self.requirement.maint


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
    May raise: KeyError if a line names a chain or asset absent from the market;
    ValueError if the asset has no price while a liability or perp needs one.
    """
    symbol = exposure.asset
    state = market.prices[symbol]
    if state.price <= 0 and price is None and _owes(exposure):
        raise ValueError(f"{symbol}: a liability or perp cannot be valued without a price")
    params = market.params
    p = state.price if price is None else price
    valid = state.valid
    band = confidence_band(p, state.band_width)
    asset_price = p - band
    liability_price = p + band
    curves = market.curves[symbol]

    # Slices carry per-line factors; multiplied by the adjusted price they are unit values.
    coll_init: list[tuple[Decimal, Decimal]] = []
    coll_maint: list[tuple[Decimal, Decimal]] = []
    liab: list[tuple[Decimal, Decimal]] = []
    for _, holding in exposure.holdings:
        b = market.buffers[(holding.chain, symbol)]
        if holding.amount >= 0:
            factor = _ONE - b if valid else _ZERO
            coll_maint.append((holding.amount, factor))
            stale = market.chains[holding.chain].stale
            coll_init.append((holding.amount, _ZERO if stale else factor))
        else:
            liab.append((-holding.amount, _ONE + b))

    if weighted:
        ci = fill_curve(coll_init, curves.collateral_init)
        cm = fill_curve(coll_maint, curves.collateral_maint)
        li = fill_curve(liab, curves.liability_init)
        lm = fill_curve(liab, curves.liability_maint)
    else:
        ci = [f * amount for amount, f in coll_init]
        cm = [f * amount for amount, f in coll_maint]
        li = [f * amount for amount, f in liab]
        lm = li

    terms: list[PerpTerm] = []
    pnl_init, pnl_maint = params.pnl_weight_init, params.pnl_weight_maint
    for _, perp in exposure.perps:
        b = market.buffers[(perp.chain, symbol)]
        if weighted:
            size = abs(perp.base)
            ratio = Sides(
                perp_margin_ratio(perp.imr, perp.imf, size) + b,
                perp_margin_ratio(perp.mmr, perp.imf, size) + b,
            )
        else:
            ratio = ZERO_SIDES
        stale = market.chains[perp.chain].stale
        gain = Sides(_ZERO if stale or not valid else pnl_init, pnl_maint if valid else _ZERO)
        terms.append(PerpTerm(perp.base, perp.entry_price, ratio, gain))

    sensitivity = PriceSensitivity(
        state.band_width,
        Sides(sum(ci, _ZERO), sum(cm, _ZERO)),
        Sides(sum(li, _ZERO), sum(lm, _ZERO)),
        tuple(terms),
        weighted,
    )
    collateral, requirement = sensitivity.sides_at(p)

    equity = _ZERO
    collateral_value = _ZERO
    for _, holding in exposure.holdings:
        if holding.amount < 0 or valid:
            equity += holding.amount * p
            if holding.amount > 0:
                collateral_value += holding.amount * p
    for term in terms:
        pnl = term.base * (p - term.entry)
        if pnl < 0 or valid:
            equity += pnl
    if not detail:
        return ExposureValue(collateral, requirement, equity, collateral_value, sensitivity)

    lines: list[LineValue] = []
    ai = lj = 0
    for index, holding in exposure.holdings:
        b = market.buffers[(holding.chain, symbol)]
        value = holding.amount * p
        if holding.amount >= 0:
            unit = asset_price * (_ONE - b)
            c = Sides(asset_price * ci[ai], asset_price * cm[ai])
            lines.append(
                _holding_line(
                    index, holding, p, valid, value, unit, b, collateral=c, requirement=ZERO_SIDES
                )
            )
            ai += 1
        else:
            unit = liability_price * (_ONE + b)
            r = Sides(liability_price * li[lj], liability_price * lm[lj])
            if weighted:
                lines.append(
                    _holding_line(
                        index,
                        holding,
                        p,
                        valid,
                        value,
                        unit,
                        b,
                        collateral=ZERO_SIDES,
                        requirement=r,
                    )
                )
            else:
                lines.append(
                    _holding_line(
                        index,
                        holding,
                        p,
                        valid,
                        value,
                        unit,
                        b,
                        collateral=Sides(-r.init, -r.maint),
                        requirement=ZERO_SIDES,
                    )
                )
            lj += 1
    for (index, perp), term in zip(exposure.perps, terms, strict=True):
        single = PriceSensitivity(state.band_width, ZERO_SIDES, ZERO_SIDES, (term,), weighted)
        coll, req = single.sides_at(p)
        pnl = perp.base * (p - perp.entry_price)
        b = market.buffers[(perp.chain, symbol)]
        weight = Sides(term.ratio.init - b, term.ratio.maint - b) if weighted else ZERO_SIDES
        lines.append(
            LineValue(
                "perp",
                index,
                perp.chain,
                perp.venue,
                symbol,
                perp.base,
                p,
                valid,
                pnl,
                p,
                b,
                weight,
                coll,
                req,
                notional=abs(perp.base) * p,
                pnl=pnl,
            )
        )
    return ExposureValue(
        collateral, requirement, equity, collateral_value, sensitivity, tuple(lines)
    )


def _owes(exposure: AssetExposure) -> bool:
    return any(h.amount < 0 for _, h in exposure.holdings) or bool(exposure.perps)


def _holding_line(
    index: int,
    holding: Holding,
    price: Decimal,
    valid: bool,
    value: Decimal,
    unit: Decimal,
    buffer: Decimal,
    *,
    collateral: Sides,
    requirement: Sides,
) -> LineValue:
    """A holding's line with its effective weight (contribution per unit of adjusted value)."""
    base = abs(holding.amount) * unit
    side = collateral if holding.amount >= 0 else requirement
    if base != 0:
        weight = Sides(abs(side.init) / base, abs(side.maint) / base)
    else:
        weight = ZERO_SIDES
    return LineValue(
        "holding",
        index,
        holding.chain,
        holding.venue,
        holding.asset,
        holding.amount,
        price,
        valid,
        value,
        unit,
        buffer,
        weight,
        collateral,
        requirement,
    )
