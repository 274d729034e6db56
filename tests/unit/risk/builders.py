"""Small builders for risk-engine inputs: round numbers, no buffer, no confidence by default,
so a golden test states only what it is about."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aggregator.margin import (
    AssetRisk,
    ChainState,
    FactorModel,
    Holding,
    Perp,
    Portfolio,
    RiskParams,
)

D = Decimal
AS_OF = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def chain(
    name: str = "eth",
    *,
    age: float = 0,
    finality: str = "0",
    latency: str = "0",
    max_staleness: str = "600",
) -> ChainState:
    """A chain whose block is `age` seconds old."""
    return ChainState(
        name, AS_OF - timedelta(seconds=age), D(finality), D(latency), D(max_staleness)
    )


def asset(symbol: str, price: str, **overrides: Any) -> AssetRisk:
    """An asset with weight 1 both sides, no confidence, no volatility unless overridden."""
    fields: dict[str, Any] = {
        "symbol": symbol,
        "price": D(price),
        "conf": D(0),
        "price_time": AS_OF,
        "max_price_age_seconds": D(3600),
        "init_weight": D(1),
        "maint_weight": D(1),
        "init_liability_weight": D(1),
        "maint_liability_weight": D(1),
        "volatility": D(0),
        "family": symbol,
    }
    for key, value in overrides.items():
        text_field = key in ("family", "symbol")
        fields[key] = D(value) if isinstance(value, str) and not text_field else value
    return AssetRisk(**fields)


def hold(asset_symbol: str, amount: str, chain_name: str = "eth", venue: str = "wallet") -> Holding:
    return Holding(chain_name, asset_symbol, D(amount), venue)


def perp(
    asset_symbol: str,
    base: str,
    entry: str,
    imr: str = "0.1",
    mmr: str = "0.05",
    imf: str = "0",
    chain_name: str = "eth",
) -> Perp:
    return Perp(chain_name, "drift", asset_symbol, D(base), D(entry), D(imr), D(mmr), D(imf))


def portfolio(
    assets: list[AssetRisk],
    holdings: list[Holding] = (),  # type: ignore[assignment]
    perps: list[Perp] = (),  # type: ignore[assignment]
    chains: list[ChainState] | None = None,
    mode: str = "standard",
    params: RiskParams | None = None,
    factors: FactorModel | None = None,
) -> Portfolio:
    return Portfolio(
        as_of=AS_OF,
        chains={c.name: c for c in (chains or [chain()])},
        assets={a.symbol: a for a in assets},
        holdings=tuple(holdings),
        perps=tuple(perps),
        mode=mode,  # type: ignore[arg-type]
        params=params or RiskParams(),
        factors=factors or FactorModel(),
    )


def with_params(p: Portfolio, **overrides: Any) -> Portfolio:
    return replace(p, params=replace(p.params, **overrides))
