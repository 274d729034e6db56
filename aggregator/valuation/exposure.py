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
class ExposureValue:
    """Totals of one asset's lines (and the lines, when asked for)."""

    collateral: Sides
    requirement: Sides
    equity: Decimal
    collateral_value: Decimal
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

    coll_init: list[tuple[Decimal, Decimal]] = []
    coll_maint: list[tuple[Decimal, Decimal]] = []
    liab: list[tuple[Decimal, Decimal]] = []
    kinds: list[tuple[int, Holding, Decimal, Decimal]] = []  # line, buffer, unit price
    for index, holding in exposure.holdings:
        b = market.buffers[(holding.chain, symbol)]
        if holding.amount >= 0:
            unit = asset_price * (_ONE - b)
            counted = unit if valid else _ZERO
            coll_maint.append((holding.amount, counted))
            coll_init.append(
                (holding.amount, _ZERO if market.chains[holding.chain].stale else counted)
            )
        else:
            unit = liability_price * (_ONE + b)
            liab.append((-holding.amount, unit))
        kinds.append((index, holding, b, unit))

    if weighted:
        ci = fill_curve(coll_init, curves.collateral_init)
        cm = fill_curve(coll_maint, curves.collateral_maint)
        li = fill_curve(liab, curves.liability_init)
        lm = fill_curve(liab, curves.liability_maint)
    else:
        ci = [unit * amount for amount, unit in coll_init]
        cm = [unit * amount for amount, unit in coll_maint]
        li = [unit * amount for amount, unit in liab]
        lm = li

    coll_i = sum(ci, _ZERO)
    coll_m = sum(cm, _ZERO)
    req_i = sum(li, _ZERO)
    req_m = sum(lm, _ZERO)
    if not weighted:
        coll_i, coll_m, req_i, req_m = coll_i - req_i, coll_m - req_m, _ZERO, _ZERO
    equity = _ZERO
    collateral_value = _ZERO
    lines: list[LineValue] = []
    ai = 0
    lj = 0
    for index, holding, b, unit in kinds:
        value = holding.amount * p
        if holding.amount >= 0:
            if valid:
                equity += value
                collateral_value += value
            if detail:
                c = Sides(ci[ai], cm[ai])
                lines.append(
                    _holding_line(
                        index,
                        holding,
                        p,
                        valid,
                        value,
                        unit,
                        b,
                        collateral=c,
                        requirement=ZERO_SIDES,
                    )
                )
            ai += 1
        else:
            equity += value
            if detail:
                r = Sides(li[lj], lm[lj])
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

    for index, perp in exposure.perps:
        b = market.buffers[(perp.chain, symbol)]
        size = abs(perp.base)
        notional = size * p
        pnl = perp.base * (p - perp.entry_price)
        gain = pnl if pnl > 0 and valid else _ZERO
        loss = -pnl if pnl < 0 else _ZERO
        stale = market.chains[perp.chain].stale
        gain_i = _ZERO if stale else gain * params.pnl_weight_init
        gain_m = gain * params.pnl_weight_maint
        equity += gain - loss
        if weighted:
            mr_i = perp_margin_ratio(perp.imr, perp.imf, size)
            mr_m = perp_margin_ratio(perp.mmr, perp.imf, size)
            r_i = notional * (mr_i + b) + loss
            r_m = notional * (mr_m + b) + loss
            coll = Sides(gain_i, gain_m)
            req = Sides(r_i, r_m)
        else:
            mr_i = mr_m = _ZERO
            coll = Sides(gain_i - loss, gain_m - loss)
            req = ZERO_SIDES
        coll_i += coll.init
        coll_m += coll.maint
        req_i += req.init
        req_m += req.maint
        if detail:
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
                    Sides(mr_i, mr_m),
                    coll,
                    req,
                    notional=notional,
                    pnl=pnl,
                )
            )
    return ExposureValue(
        Sides(coll_i, coll_m), Sides(req_i, req_m), equity, collateral_value, tuple(lines)
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
