"""Standard mode: weighted collateral against weighted requirements, line by line (design §5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from aggregator.margin.roots import largest_satisfying, nearest_root_piecewise_linear
from aggregator.valuation.exposure import (
    AssetExposure,
    ExposureValue,
    Sides,
    new_sides,
    value_exposure,
)
from aggregator.valuation.market import CONF_BAND_CAP, Market, confidence_band
from aggregator.valuation.model import Holding

_ZERO = Decimal(0)
_ONE = Decimal(1)
_MINUS_ONE = Decimal(-1)


@dataclass(frozen=True, slots=True)
class StandardBook:
    """A book valued in standard mode, asset by asset."""

    market: Market
    groups: Mapping[str, AssetExposure]
    values: Mapping[str, ExposureValue]
    collateral: Sides
    requirement: Sides

    @property
    def health(self) -> Sides:
        """`weighted_collateral - requirement` per side."""
        return Sides(
            self.collateral.init - self.requirement.init,
            self.collateral.maint - self.requirement.maint,
        )


def value_standard_book(
    market: Market, groups: Mapping[str, AssetExposure], *, detail: bool = True
) -> StandardBook:
    """Value every asset group and sum the sides; `detail=False` keeps no per-line values.
    May raise: KeyError (unknown chain/asset)."""
    values = {
        asset: value_exposure(market, group, detail=detail) for asset, group in groups.items()
    }
    coll_i = coll_m = req_i = req_m = _ZERO
    for value in values.values():
        coll_i += value.collateral_init
        coll_m += value.collateral_maint
        req_i += value.requirement_init
        req_m += value.requirement_maint
    return StandardBook(market, groups, values, new_sides(coll_i, coll_m), new_sides(req_i, req_m))


def price_breakpoints(market: Market, group: AssetExposure) -> list[Decimal]:
    """Prices where an asset group's value changes slope: the confidence cap's kink
    (`k*c = 0.05*p`) and every perp entry price."""
    width = market.prices[group.asset].band_width
    points = [width / CONF_BAND_CAP] if width > 0 else []
    points.extend(perp.entry_price for _, perp in group.perps)
    return points


def liquidation_price(book: StandardBook, asset: str) -> Decimal | None:
    """The price of `asset` nearest to its current price at which `health.maint = 0`, every
    line of the asset moving together and everything else fixed; None when there is none."""
    group = book.groups[asset]
    price = book.market.prices[asset].price
    if price <= 0:
        return None
    value = book.values[asset]
    rest = book.health.maint - value.health_maint
    sensitivity = value.sensitivity

    def health_at(p: Decimal) -> Decimal:
        return rest + sensitivity.health_maint_at(p)

    return nearest_root_piecewise_linear(
        health_at, price, _ZERO, price_breakpoints(book.market, group)
    )


def liquidation_shock(book: StandardBook) -> Decimal | None:
    """The uniform relative move of every non-stable price nearest to 0 that brings
    `health.maint` to 0 (e.g. -0.23 = all risky prices down 23 %), or None."""
    market = book.market
    moving = [
        asset
        for asset in book.groups
        if not market.assets[asset].stable and market.prices[asset].price > 0
    ]
    if not moving:
        return None
    rest = book.health.maint - sum((book.values[a].health_maint for a in moving), _ZERO)
    breakpoints: list[Decimal] = []
    for asset in moving:
        price = market.prices[asset].price
        breakpoints.extend(p / price - _ONE for p in price_breakpoints(market, book.groups[asset]))

    terms = [(market.prices[a].price, book.values[a].sensitivity) for a in moving]

    def health_at(shock: Decimal) -> Decimal:
        total = rest
        for price, sensitivity in terms:
            total += sensitivity.health_maint_at(price * (_ONE + shock))
        return total

    return nearest_root_piecewise_linear(health_at, _ZERO, _MINUS_ONE, breakpoints)


def riskiest_chain(market: Market, asset: str) -> str | None:
    """The chain with the largest latency buffer for `asset` (ties: first listed)."""
    best: str | None = None
    for chain in market.chains:
        if best is None or market.buffers[(chain, asset)] > market.buffers[(best, asset)]:
            best = chain
    return best


def with_holding(group: AssetExposure, holding: Holding) -> AssetExposure:
    """`group` plus one extra holding (index -1: not a line of the portfolio)."""
    return AssetExposure(group.asset, (*group.holdings, (-1, holding)), group.perps)


def withdrawal_order(market: Market, group: AssetExposure) -> list[tuple[int, Holding]]:
    """Collateral lines of a group, least valuable per token on the initial side first
    (stale chains and invalid prices first, then the largest latency buffer)."""
    valid = market.prices[group.asset].valid
    lines = [(i, h) for i, h in group.holdings if h.amount > 0]

    def unit_value(line: tuple[int, Holding]) -> Decimal:
        holding = line[1]
        if not valid or market.chains[holding.chain].stale:
            return _MINUS_ONE
        return -market.buffers[(holding.chain, group.asset)]

    return sorted(lines, key=unit_value)


def withdrawn(
    group: AssetExposure, order: list[tuple[int, Holding]], amount: Decimal
) -> AssetExposure:
    """`group` after withdrawing `amount` tokens, taking lines in `order`."""
    left = amount
    reduced: dict[int, Holding] = {}
    for index, holding in order:
        take = holding.amount if holding.amount < left else left
        reduced[index] = Holding(holding.chain, holding.asset, holding.amount - take, holding.venue)
        left -= take
        if left <= 0:
            break
    holdings = tuple((i, reduced.get(i, h)) for i, h in group.holdings)
    return AssetExposure(group.asset, holdings, group.perps)


def max_borrow(book: StandardBook, asset: str) -> Decimal:
    """The largest extra borrow of `asset` (tokens, withdrawn from the account) keeping
    `health.init >= 0`, priced on the chain with the largest latency buffer for it.
    0 when the price is invalid or there is no free collateral."""
    market = book.market
    free = book.health.init
    state = market.prices[asset]
    chain = riskiest_chain(market, asset)
    if free <= 0 or not state.valid or chain is None:
        return _ZERO
    unit = (state.price + confidence_band(state.price, state.band_width)) * (
        _ONE + market.buffers[(chain, asset)]
    )
    curve = market.curves[asset].liability_init
    if unit * curve.weight <= 0:
        return _ZERO
    upper = free / (unit * curve.weight)  # marginal requirement is at least unit * l_init
    if curve.linear:
        return upper
    group = book.groups.get(asset, AssetExposure(asset, (), ()))
    before = book.values[asset].requirement_init if asset in book.values else _ZERO

    def fits(amount: Decimal) -> bool:
        extended = with_holding(group, Holding(chain, asset, -amount, "borrow"))
        after = value_exposure(market, extended, detail=False).requirement_init
        return after - before <= free

    return largest_satisfying(fits, upper, iterations=64)


def max_withdraw(book: StandardBook, asset: str) -> Decimal:
    """The largest amount of `asset` collateral (tokens) that can leave the account keeping
    `health.init >= 0`, taken from its least valuable lines first; 0 in margin call."""
    market = book.market
    group = book.groups.get(asset)
    free = book.health.init
    if group is None or free < 0:
        return _ZERO
    order = withdrawal_order(market, group)
    total = sum((h.amount for _, h in order), _ZERO)
    if total <= 0:
        return _ZERO
    curve = market.curves[asset].collateral_init
    if curve.linear:
        state = market.prices[asset]
        asset_price = state.price - confidence_band(state.price, state.band_width)
        taken = _ZERO
        for _, holding in order:
            stale = market.chains[holding.chain].stale
            per_token = (
                _ZERO
                if stale or not state.valid
                else (asset_price * (_ONE - market.buffers[(holding.chain, asset)]) * curve.weight)
            )
            if per_token * holding.amount <= free:
                taken += holding.amount
                free -= per_token * holding.amount
            else:
                return taken + free / per_token
        return taken
    before = book.values[asset].collateral_init

    def fits(amount: Decimal) -> bool:
        after = value_exposure(market, withdrawn(group, order, amount), detail=False)
        return before - after.collateral_init <= free

    return largest_satisfying(fits, total, iterations=64)
