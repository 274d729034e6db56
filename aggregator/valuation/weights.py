"""Haircut weights: Drift-form size adjustment and Bybit-form tiered collateral ratios.

A weight curve maps a total token amount `S` of one asset on one side of an account to a
weighted token amount (assets) or a requirement token amount (liabilities). Lines of the same
asset share one curve: they are ranked by unit value, highest first, and each line gets the
increment of the curve over its own slice (`fill_curve`). Splitting a holding over chains or
venues therefore never lowers its haircut, and adding a line never lowers the value of others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import TypeVar

from aggregator.valuation.model import PRECISION, Tier

_ZERO = Decimal(0)
_ONE = Decimal(1)
_DRIFT_ASSET_CAP = Decimal("1.1")
_DRIFT_LIABILITY_BASE = Decimal("0.8")
_INFINITY = Decimal("Infinity")
# Square roots dominate the cost of a size adjustment, and for most sizes the adjustment does
# not bind (`aw = w`, `lw = l`, a perp's ratio is its imr/mmr). A size is *plainly* below the
# binding point when it is below the point times `1 - 1e-20`: the rounding of every step of
# the adjusted weight (40 digits, relative error below 1e-38 each) cannot bridge that gap, so
# the comparison the rules make is known without taking the root, and the result is the very
# same number. Sizes closer to the binding point take the root as before.
_PLAIN_MARGIN = Decimal(1) - Decimal("1e-20")


def tiered_amount(amount: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """Tokens that count after tiered ratios, band by band (Bybit's form).

    With tiers `[[0,100000,1],[100000,500000,0.9],[500000,null,0.5]]`, 600,000 tokens count
    100,000*1 + 400,000*0.9 + 100,000*0.5 = 510,000. Tokens beyond a bounded last band count 0.
    """
    counted = _ZERO
    for tier in tiers:
        if amount <= tier.start:
            break
        top = amount if tier.end is None or amount < tier.end else tier.end
        counted += (top - tier.start) * tier.ratio
    return counted


def size_adjusted_asset_weight(weight: Decimal, imf: Decimal, size: Decimal) -> Decimal:
    """Drift's form: `min(w, 1.1 / (1 + imf * sqrt(s)))`, `s` in tokens."""
    if imf <= 0 or size <= 0:
        return weight
    adjusted = _DRIFT_ASSET_CAP / (_ONE + imf * size.sqrt())
    return adjusted if adjusted < weight else weight


def size_adjusted_liability_weight(weight: Decimal, imf: Decimal, size: Decimal) -> Decimal:
    """Drift's form: `max(l, 0.8 * l + imf * sqrt(s))`, `s` in tokens."""
    if imf <= 0 or size <= 0:
        return weight
    adjusted = _DRIFT_LIABILITY_BASE * weight + imf * size.sqrt()
    return adjusted if adjusted > weight else weight


def is_default_tiers(tiers: Sequence[Tier]) -> bool:
    """True for one unbounded band of ratio 1 (no tiering)."""
    return len(tiers) == 1 and tiers[0].end is None and tiers[0].ratio == _ONE


@dataclass(frozen=True, slots=True)
class AssetCurve:
    """Weighted token amount of `S` collateral tokens: `tiered(S) * aw(S)`, made monotone.

    With both a size adjustment and tiers, `tiered(S) * aw(S)` can fall as `S` grows (a band
    of low ratio while `aw` keeps shrinking). Holding more can never be worse than holding
    less, so the curve is the running maximum. Within one band past the weight cap the raw
    curve first falls then rises, so the maximum over `[0, S]` is reached at `S`, at a band
    boundary or at the size where the cap stops binding: those are the only candidates
    (`envelope_points`, computed once at the engine's precision; empty when the raw curve is
    increasing already).
    """

    weight: Decimal
    imf: Decimal
    tiers: tuple[Tier, ...]
    linear: bool = field(init=False, repr=False, compare=False)  # the curve is `weight * S`
    envelope_points: tuple[Decimal, ...] = field(init=False, repr=False, compare=False)
    # Sizes below this are plainly below the cap `1.1/(1+imf*sqrt(S)) = w`: `aw(S) = w`.
    plain_below: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        default_tiers = is_default_tiers(self.tiers)
        object.__setattr__(self, "linear", self.imf <= 0 and default_tiers)
        points: list[Decimal] = []
        plain_below = _ZERO
        with localcontext() as ctx:
            ctx.prec = PRECISION
            if self.imf <= 0 or self.weight <= 0:
                plain_below = _INFINITY  # aw = w whatever the size
            elif self.weight <= _ONE:
                # 1.1/(1+imf*sqrt(S)) >= w  <=>  S <= ((1.1/w - 1)/imf)^2; with w <= 1 the
                # margin stays wide (1.1/w - 1 >= 0.1) through every rounding.
                root = (_DRIFT_ASSET_CAP / self.weight - _ONE) / self.imf
                plain_below = root * root * _PLAIN_MARGIN
            if self.imf > 0 and not default_tiers and self.weight > 0:
                points = [t.start for t in self.tiers] + [t.end for t in self.tiers if t.end]
                cap_root = (_DRIFT_ASSET_CAP / self.weight - _ONE) / self.imf
                points.append(cap_root * cap_root)
        object.__setattr__(self, "plain_below", plain_below)
        # Only positive points count, and the envelope is a maximum: keep them distinct and
        # ascending so that the scan stops at the first point not below the size.
        object.__setattr__(self, "envelope_points", tuple(sorted({x for x in points if x > 0})))

    def raw(self, size: Decimal) -> Decimal:
        """`tiered(S) * aw(S)` without the monotone envelope."""
        if size < self.plain_below:
            return tiered_amount(size, self.tiers) * self.weight
        return tiered_amount(size, self.tiers) * size_adjusted_asset_weight(
            self.weight, self.imf, size
        )

    def __call__(self, size: Decimal) -> Decimal:
        if size <= 0:
            return _ZERO
        if self.imf <= 0:
            return tiered_amount(size, self.tiers) * self.weight
        return self.envelope(self.raw(size), size)

    def envelope(self, raw: Decimal, size: Decimal) -> Decimal:
        """The monotone envelope at `size` given `raw = self.raw(size)`: the largest raw
        value at `size` or at a candidate point below it."""
        best = raw
        # S * min(w, 1.1/(1+imf*sqrt(S))) is increasing already: no points to check then.
        for point in self.envelope_points:
            if point >= size:
                break
            value = self.raw(point)
            if value > best:
                best = value
        return best

    def pair_at(self, other: AssetCurve, size: Decimal) -> tuple[Decimal, Decimal]:
        """`(self(size), other(size))` for two curves of one asset (same imf and tiers): the
        tiered amount and the size adjustment `1.1 / (1 + imf*sqrt(S))` are computed once."""
        if size <= 0:
            return _ZERO, _ZERO
        counted = tiered_amount(size, self.tiers)
        if self.imf <= 0:
            return counted * self.weight, counted * other.weight
        if size < self.plain_below and size < other.plain_below:
            raw_self, raw_other = counted * self.weight, counted * other.weight
            return self.envelope(raw_self, size), other.envelope(raw_other, size)
        adjusted = _DRIFT_ASSET_CAP / (_ONE + self.imf * size.sqrt())
        raw_self = counted * (adjusted if adjusted < self.weight else self.weight)
        raw_other = counted * (adjusted if adjusted < other.weight else other.weight)
        return self.envelope(raw_self, size), other.envelope(raw_other, size)


@dataclass(frozen=True, slots=True)
class LiabilityCurve:
    """Requirement token amount of `S` borrowed tokens: `S * lw(S)` (increasing, convex)."""

    weight: Decimal
    imf: Decimal
    # Sizes below this are plainly below `0.8*l + imf*sqrt(S) = l`: `lw(S) = l`.
    plain_below: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plain_below = _ZERO
        with localcontext() as ctx:
            ctx.prec = PRECISION
            if self.imf <= 0:
                plain_below = _INFINITY
            elif self.weight > 0:
                # 0.8*l + imf*sqrt(S) <= l  <=>  S <= (0.2*l/imf)^2.
                root = (self.weight - _DRIFT_LIABILITY_BASE * self.weight) / self.imf
                plain_below = root * root * _PLAIN_MARGIN
        object.__setattr__(self, "plain_below", plain_below)

    @property
    def linear(self) -> bool:
        """True when the curve is `weight * S`."""
        return self.imf <= 0

    def __call__(self, size: Decimal) -> Decimal:
        if size <= 0:
            return _ZERO
        if size < self.plain_below:
            return size * self.weight
        return size * size_adjusted_liability_weight(self.weight, self.imf, size)

    def pair_at(self, other: LiabilityCurve, size: Decimal) -> tuple[Decimal, Decimal]:
        """`(self(size), other(size))` for two curves of one asset (same imf): `imf *
        sqrt(S)` is computed once."""
        if size <= 0:
            return _ZERO, _ZERO
        if self.imf <= 0 or (size < self.plain_below and size < other.plain_below):
            return size * self.weight, size * other.weight
        scaled = self.imf * size.sqrt()
        adjusted_self = _DRIFT_LIABILITY_BASE * self.weight + scaled
        adjusted_other = _DRIFT_LIABILITY_BASE * other.weight + scaled
        return (
            size * (adjusted_self if adjusted_self > self.weight else self.weight),
            size * (adjusted_other if adjusted_other > other.weight else other.weight),
        )


def fill_curve(
    slices: Sequence[tuple[Decimal, Decimal]], curve: AssetCurve | LiabilityCurve
) -> list[Decimal]:
    """Contribution of each `(amount, unit_value)` slice: `unit_value * (curve(S_i) -
    curve(S_{i-1}))`, the slices taken in decreasing unit value (ties keep input order).

    Returns contributions in the input order. Amounts must be non-negative.
    """
    if curve.linear:
        return [unit * amount * curve.weight for amount, unit in slices]
    if len(slices) == 1:
        amount, unit = slices[0]
        # The loop below with one slice: S_1 = 0 + amount (rounded to the context, like any
        # sum), and curve(S_1) - 0 is curve(S_1) exactly.
        return [unit * curve(_ZERO + amount)]
    order = sorted(range(len(slices)), key=lambda i: slices[i][1], reverse=True)
    out = [_ZERO] * len(slices)
    filled = _ZERO
    level = _ZERO
    for i in order:
        amount, unit = slices[i]
        filled += amount
        new_level = curve(filled)
        out[i] = unit * (new_level - level)
        level = new_level
    return out


_Curve = TypeVar("_Curve", AssetCurve, LiabilityCurve)


def fill_curve_pair(
    slices: Sequence[tuple[Decimal, Decimal]], first: _Curve, second: _Curve
) -> tuple[list[Decimal], list[Decimal]]:
    """`(fill_curve(slices, first), fill_curve(slices, second))` for the init and maint
    curves of one asset and side (same imf and tiers, weights differ): both fill the same
    amounts in the same order, so each filled amount's size adjustment is computed once.
    Same numbers.
    """
    if not slices:
        return [], []
    if first.linear:
        return fill_curve(slices, first), fill_curve(slices, second)
    if len(slices) == 1:
        amount, unit = slices[0]
        value_first, value_second = first.pair_at(second, _ZERO + amount)  # as `fill_curve`
        return [unit * value_first], [unit * value_second]
    order = sorted(range(len(slices)), key=lambda i: slices[i][1], reverse=True)
    out_first = [_ZERO] * len(slices)
    out_second = [_ZERO] * len(slices)
    filled = level_first = level_second = _ZERO
    for i in order:
        amount, unit = slices[i]
        filled += amount
        new_first, new_second = first.pair_at(second, filled)
        out_first[i] = unit * (new_first - level_first)
        out_second[i] = unit * (new_second - level_second)
        level_first, level_second = new_first, new_second
    return out_first, out_second


def perp_margin_ratio(base_ratio: Decimal, imf: Decimal, base_size: Decimal) -> Decimal:
    """`max(imr|mmr, imf * sqrt(|base|))`."""
    if imf <= 0 or base_size <= 0:
        return base_ratio
    scaled = imf * base_size.sqrt()
    return scaled if scaled > base_ratio else base_ratio


def perp_margin_ratios(
    imr: Decimal, mmr: Decimal, imf: Decimal, base_size: Decimal
) -> tuple[Decimal, Decimal]:
    """`(perp_margin_ratio(imr, imf, s), perp_margin_ratio(mmr, imf, s))`, the square root
    taken once, and not at all when `imf * sqrt(s)` is plainly below both ratios
    (`imf^2 * s < r^2 * (1 - 1e-20)`, see `_PLAIN_MARGIN`)."""
    if imf <= 0 or base_size <= 0:
        return imr, mmr
    floor = mmr if mmr < imr else imr
    if floor > 0 and imf * imf * base_size < floor * floor * _PLAIN_MARGIN:
        return imr, mmr
    scaled = imf * base_size.sqrt()
    return (scaled if scaled > imr else imr), (scaled if scaled > mmr else mmr)
