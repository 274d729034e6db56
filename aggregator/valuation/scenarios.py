"""Risk-factor scenarios for portfolio mode: families, correlations, Monte Carlo draws and a
SPAN-like stress grid.

Every asset belongs to a family (ETH with its liquid staking tokens, BTC with its wrappers,
SOL, stablecoins, ...). A family is one risk factor: its assets move together, each scaled by
its own volatility. Draws are made in binary floating point with `random.Random(seed)` and a
hand-written Cholesky factor, so a given market and seed always produce the same scenarios.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from aggregator.valuation.model import AssetRisk, FactorModel, RiskParams


class FactorModelError(ValueError):
    """Correlations or covariances that cannot describe real prices (not positive
    semi-definite, or a family without variance)."""


@dataclass(frozen=True, slots=True)
class FactorStructure:
    """Families (sorted), their correlation matrix and each asset's annualized volatility."""

    families: tuple[str, ...]
    correlation: tuple[tuple[float, ...], ...]
    asset_family: Mapping[str, str]
    asset_volatility: Mapping[str, float]
    stable_families: frozenset[str]


def _pair(table: Mapping[tuple[str, str], Decimal], a: str, b: str) -> Decimal | None:
    value = table.get((a, b))
    return table.get((b, a)) if value is None else value


def factor_structure(
    assets: Mapping[str, AssetRisk], factors: FactorModel, params: RiskParams
) -> FactorStructure:
    """Build the factor structure of a market.

    Correlation of two families: from `factors.covariance` when it has the pair (then each
    family's volatility is `sqrt(cov(F, F))` and overrides its assets' volatilities), else
    `factors.correlations`, else `params.default_correlation` between two non-stable families
    and 0 with a stablecoin family.
    May raise: FactorModelError.
    """
    families = tuple(sorted({a.family for a in assets.values()}))
    stable = frozenset(a.family for a in assets.values() if a.stable)
    family_vol: dict[str, float] = {}
    for family in families:
        variance = _pair(factors.covariance, family, family)
        if variance is not None:
            if variance <= 0:
                raise FactorModelError(f"covariance of {family} with itself must be positive")
            family_vol[family] = math.sqrt(float(variance))
    rows: list[tuple[float, ...]] = []
    for a in families:
        row: list[float] = []
        for b in families:
            if a == b:
                row.append(1.0)
                continue
            cov = _pair(factors.covariance, a, b)
            if cov is not None and a in family_vol and b in family_vol:
                row.append(float(cov) / (family_vol[a] * family_vol[b]))
                continue
            rho = _pair(factors.correlations, a, b)
            if rho is None:
                rho = Decimal(0) if a in stable or b in stable else params.default_correlation
            row.append(float(rho))
        rows.append(tuple(row))
    vols = {
        symbol: family_vol.get(asset.family, float(asset.volatility))
        for symbol, asset in assets.items()
    }
    structure = FactorStructure(
        families, tuple(rows), {s: a.family for s, a in assets.items()}, vols, stable
    )
    cholesky(structure.correlation)  # refuse an impossible matrix up front
    return structure


def cholesky(matrix: Sequence[Sequence[float]], tolerance: float = 1e-10) -> list[list[float]]:
    """Lower-triangular `L` with `L L^T = matrix` for a symmetric positive semi-definite
    matrix (a zero pivot leaves its column zero).

    May raise: FactorModelError if the matrix is not symmetric or not positive semi-definite.
    """
    n = len(matrix)
    lower = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            if abs(matrix[i][j] - matrix[j][i]) > tolerance:
                raise FactorModelError("correlation matrix is not symmetric")
            partial = sum(lower[i][k] * lower[j][k] for k in range(j))
            if i == j:
                pivot = matrix[i][i] - partial
                if pivot < -tolerance:
                    raise FactorModelError("correlation matrix is not positive semi-definite")
                lower[i][j] = math.sqrt(max(pivot, 0.0))
            elif lower[j][j] > 0:
                lower[i][j] = (matrix[i][j] - partial) / lower[j][j]
            elif abs(matrix[i][j] - partial) > 1e-7:
                raise FactorModelError("correlation matrix is not positive semi-definite")
    return lower


@lru_cache(maxsize=16)
def correlated_draws(
    correlation: tuple[tuple[float, ...], ...], count: int, seed: int
) -> tuple[tuple[float, ...], ...]:
    """`count` standard normal draws per factor (one tuple per factor), correlated as given.

    Pure and deterministic: the same inputs always give the same draws (memoized).
    May raise: FactorModelError.
    """
    lower = cholesky(correlation)
    n = len(correlation)
    rng = random.Random(seed)
    columns: list[list[float]] = [[] for _ in range(n)]
    for _ in range(count):
        z = [rng.gauss(0.0, 1.0) for _ in range(n)]
        for i in range(n):
            row = lower[i]
            columns[i].append(sum(row[k] * z[k] for k in range(i + 1)))
    return tuple(tuple(c) for c in columns)


@dataclass(frozen=True, slots=True)
class StressScenario:
    """One point of the stress grid: relative price moves by asset."""

    name: str
    moves: Mapping[str, float]


_FRACTIONS = ((1, 3), (2, 3), (3, 3))


def stress_grid(
    structure: FactorStructure,
    assets: Sequence[str],
    horizon_years: float,
    params: RiskParams,
    factors: FactorModel,
) -> list[StressScenario]:
    """SPAN-like scans over the latency horizon: each non-stable family alone and all of them
    together at ±1/3, ±2/3 and ±1 of the range, plus a depeg of each stablecoin family.

    An asset's range is `latency_z * sigma * sqrt(T)` unless `factors.stress_ranges` fixes
    its family's range; the depeg moves every stablecoin of the family by `-depeg_shock`.
    """
    z = float(params.latency_z)
    ranges: dict[str, float] = {}
    for asset in assets:
        family = structure.asset_family[asset]
        fixed = factors.stress_ranges.get(family)
        ranges[asset] = (
            float(fixed)
            if fixed is not None
            else z * structure.asset_volatility[asset] * math.sqrt(horizon_years)
        )
    risky_families = sorted({structure.asset_family[a] for a in assets} - structure.stable_families)
    scenarios: list[StressScenario] = []
    groups = [(f, [a for a in assets if structure.asset_family[a] == f]) for f in risky_families]
    if len(groups) > 1:
        groups.append(("all", [a for a in assets if structure.asset_family[a] in risky_families]))
    for label, members in groups:
        for sign in (1, -1):
            for num, den in _FRACTIONS:
                frac = sign * num / den
                name = f"{label} {'+' if sign > 0 else '-'}{num}/{den}"
                scenarios.append(StressScenario(name, {a: frac * ranges[a] for a in members}))
    for family in sorted({structure.asset_family[a] for a in assets} & structure.stable_families):
        members = [a for a in assets if structure.asset_family[a] == family]
        shock = -float(params.depeg_shock)
        scenarios.append(StressScenario(f"{family} depeg", dict.fromkeys(members, shock)))
    return scenarios
