"""Haircut weights: Drift-form size adjustment and Bybit-form tiered collateral ratios.

A weight curve maps a total token amount `S` of one asset on one side of an account to a
weighted token amount (assets) or a requirement token amount (liabilities). Lines of the same
asset share one curve: they are ranked by unit value, highest first, and each line gets the
increment of the curve over its own slice (`fill_curve`). Splitting a holding over chains or
venues therefore never lowers its haircut, and adding a line never lowers the value of others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from aggregator.valuation.model import Tier

_ZERO = Decimal(0)
_ONE = Decimal(1)
_DRIFT_ASSET_CAP = Decimal("1.1")
_DRIFT_LIABILITY_BASE = Decimal("0.8")


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
    boundary or at the size where the cap stops binding: those are the only candidates.
    """

    weight: Decimal
    imf: Decimal
    tiers: tuple[Tier, ...]

    @property
    def linear(self) -> bool:
        """True when the curve is `weight * S`."""
        return self.imf <= 0 and is_default_tiers(self.tiers)

    def raw(self, size: Decimal) -> Decimal:
        """`tiered(S) * aw(S)` without the monotone envelope."""
        return tiered_amount(size, self.tiers) * size_adjusted_asset_weight(
            self.weight, self.imf, size
        )

    def __call__(self, size: Decimal) -> Decimal:
        if size <= 0:
            return _ZERO
        if self.imf <= 0:
            return tiered_amount(size, self.tiers) * self.weight
        best = self.raw(size)
        if is_default_tiers(self.tiers) or self.weight <= 0:
            return best  # S * min(w, 1.1/(1+imf*sqrt(S))) is increasing already
        candidates = [t.start for t in self.tiers] + [t.end for t in self.tiers if t.end]
        cap_root = (_DRIFT_ASSET_CAP / self.weight - _ONE) / self.imf
        candidates.append(cap_root * cap_root)
        for point in candidates:
            if _ZERO < point < size:
                value = self.raw(point)
                if value > best:
                    best = value
        return best


@dataclass(frozen=True, slots=True)
class LiabilityCurve:
    """Requirement token amount of `S` borrowed tokens: `S * lw(S)` (increasing, convex)."""

    weight: Decimal
    imf: Decimal

    @property
    def linear(self) -> bool:
        """True when the curve is `weight * S`."""
        return self.imf <= 0

    def __call__(self, size: Decimal) -> Decimal:
        if size <= 0:
            return _ZERO
        return size * size_adjusted_liability_weight(self.weight, self.imf, size)


def fill_curve(
    slices: Sequence[tuple[Decimal, Decimal]], curve: AssetCurve | LiabilityCurve
) -> list[Decimal]:
    """Contribution of each `(amount, unit_value)` slice: `unit_value * (curve(S_i) -
    curve(S_{i-1}))`, the slices taken in decreasing unit value (ties keep input order).

    Returns contributions in the input order. Amounts must be non-negative.
    """
    if curve.linear:
        return [unit * amount * curve.weight for amount, unit in slices]
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


def perp_margin_ratio(base_ratio: Decimal, imf: Decimal, base_size: Decimal) -> Decimal:
    """`max(imr|mmr, imf * sqrt(|base|))`."""
    if imf <= 0 or base_size <= 0:
        return base_ratio
    scaled = imf * base_size.sqrt()
    return scaled if scaled > base_ratio else base_ratio
