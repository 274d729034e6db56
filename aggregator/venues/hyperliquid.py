"""Hyperliquid's own margin rules, in Decimal: what HyperCore reports in `clearinghouseState`.

Rules (Hyperliquid docs, trading/margining.md, liquidations.md, margin-tiers.md):
- mark of a position = positionValue / |szi|;
- maintenance margin = notional / (2 * max leverage of the position's tier), i.e. half the
  initial margin at max leverage;
- cross account value = cross totalRawUsd + sum of szi * mark over cross positions;
- isolated margin used (the isolated bucket's equity) = leverage.rawUsd + szi * mark;
- liquidation price = mark - side * margin_available / |szi| / (1 - l * side), with
  l = 1 / (2 * max leverage), side +1 long / -1 short, and margin_available = cross account
  value - cross maintenance margin (cross) or isolated margin - its maintenance margin
  (isolated). A result at or below zero means no liquidation price (the venue sends null).

Nothing here does I/O; every input and output is a Decimal. `cross_health` is the venue view
of design §7a: Hyperliquid's account value against its maintenance margin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from chains.hyperliquid.decoders import PerpPosition

_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWO = Decimal(2)

MarginMode = Literal["cross", "isolated"]


@dataclass(frozen=True, slots=True)
class VenuePosition:
    """One perp position as the venue's rules see it.

    `max_leverage` is the max leverage of the position's margin tier; `raw_usd` is the isolated
    bucket's raw USD (`leverage.rawUsd`), None for a cross position.
    """

    coin: str
    szi: Decimal
    position_value: Decimal
    max_leverage: Decimal
    mode: MarginMode
    raw_usd: Decimal | None = None

    @property
    def side(self) -> Decimal:
        """+1 for a long, -1 for a short."""
        return _ONE if self.szi > 0 else -_ONE

    @property
    def mark(self) -> Decimal:
        """The mark price the venue valued the position at. May raise: ZeroDivisionError
        (a zero size)."""
        return self.position_value / abs(self.szi)


@dataclass(frozen=True, slots=True)
class MarginTier:
    """From `lower_bound` (USD notional) on, positions may use up to `max_leverage`."""

    lower_bound: Decimal
    max_leverage: Decimal


@dataclass(frozen=True, slots=True)
class VenueHealth:
    """Hyperliquid's view of a cross account: account value against maintenance margin.

    `ratio` is account value / maintenance margin (None when no margin is required); the
    venue liquidates when `margin_available` goes below zero.
    """

    account_value: Decimal
    maintenance_margin: Decimal
    margin_available: Decimal
    ratio: Decimal | None


def maintenance_ratio(max_leverage: Decimal) -> Decimal:
    """l = 1 / (2 * max leverage). May raise: ZeroDivisionError (max leverage 0)."""
    return _ONE / (_TWO * max_leverage)


def tier_max_leverage(tiers: Sequence[MarginTier], notional: Decimal) -> Decimal:
    """Max leverage of the tier `notional` falls in (the last tier whose lower bound it
    reaches). May raise: ValueError (no tiers)."""
    if not tiers:
        raise ValueError("a margin table needs at least one tier")
    chosen = tiers[0].max_leverage
    for tier in sorted(tiers, key=lambda t: t.lower_bound):
        if notional >= tier.lower_bound:
            chosen = tier.max_leverage
    return chosen


def maintenance_margin(position: VenuePosition) -> Decimal:
    """Notional / (2 * max leverage). May raise: ZeroDivisionError (max leverage 0)."""
    return position.position_value * maintenance_ratio(position.max_leverage)


def cross_maintenance_margin(positions: Iterable[VenuePosition]) -> Decimal:
    """Hyperliquid's `crossMaintenanceMarginUsed`: the sum over cross positions.

    May raise: ZeroDivisionError (a max leverage of 0).
    """
    return sum((maintenance_margin(p) for p in positions if p.mode == "cross"), _ZERO)


def cross_account_value(
    cross_total_raw_usd: Decimal, positions: Iterable[VenuePosition]
) -> Decimal:
    """Hyperliquid's cross `accountValue`: raw USD plus each cross position at mark.

    May raise: ZeroDivisionError (a zero size).
    """
    return cross_total_raw_usd + sum(
        (p.szi * p.mark for p in positions if p.mode == "cross"), _ZERO
    )


def isolated_margin_used(position: VenuePosition) -> Decimal:
    """Hyperliquid's isolated `marginUsed`: the bucket's raw USD plus the position at mark.

    May raise: ValueError (a cross position), ZeroDivisionError (a zero size).
    """
    if position.raw_usd is None:
        raise ValueError(f"{position.coin}: a cross position has no isolated margin")
    return position.raw_usd + position.szi * position.mark


def liquidation_price(position: VenuePosition, margin_available: Decimal) -> Decimal | None:
    """The documented `price - side * margin_available / |szi| / (1 - l * side)`, or None
    when that is not above zero (the venue's null).

    May raise: ZeroDivisionError (a zero size or max leverage).
    """
    side = position.side
    l_ratio = maintenance_ratio(position.max_leverage)
    price = position.mark - side * margin_available / abs(position.szi) / (_ONE - l_ratio * side)
    return price if price > 0 else None


def cross_margin_available(
    cross_total_raw_usd: Decimal, positions: Sequence[VenuePosition]
) -> Decimal:
    """Cross account value minus cross maintenance margin. May raise: ZeroDivisionError."""
    return cross_account_value(cross_total_raw_usd, positions) - cross_maintenance_margin(positions)


def position_liquidation_price(
    position: VenuePosition, cross_total_raw_usd: Decimal, positions: Sequence[VenuePosition]
) -> Decimal | None:
    """Liquidation price of one position of an account, by its margin mode: cross positions
    share the cross margin available, an isolated one has its own bucket.

    May raise: ZeroDivisionError (a zero size or max leverage).
    """
    if position.mode == "isolated":
        available = isolated_margin_used(position) - maintenance_margin(position)
    else:
        available = cross_margin_available(cross_total_raw_usd, positions)
    return liquidation_price(position, available)


def cross_health(cross_total_raw_usd: Decimal, positions: Sequence[VenuePosition]) -> VenueHealth:
    """The venue-native health of a cross account (isolated buckets liquidate on their own).

    May raise: ZeroDivisionError (a zero size or max leverage).
    """
    value = cross_account_value(cross_total_raw_usd, positions)
    margin = cross_maintenance_margin(positions)
    return VenueHealth(
        account_value=value,
        maintenance_margin=margin,
        margin_available=value - margin,
        ratio=value / margin if margin > 0 else None,
    )


def venue_positions(
    positions: Iterable[PerpPosition], default_max_leverage: Decimal | None = None
) -> tuple[VenuePosition, ...]:
    """The decoded positions of a `clearinghouseState` as the venue's rules take them; a
    position without `maxLeverage` (the 2023 format) takes `default_max_leverage`.

    May raise: ValueError (no max leverage known for a position).
    """
    out = []
    for p in positions:
        if p.max_leverage is not None:
            max_leverage = Decimal(p.max_leverage)
        elif default_max_leverage is not None:
            max_leverage = default_max_leverage
        else:
            raise ValueError(f"{p.coin}: no max leverage known")
        out.append(
            VenuePosition(p.coin, p.szi, p.position_value, max_leverage, p.leverage_type, p.raw_usd)
        )
    return tuple(out)
