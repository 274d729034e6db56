"""Step 1 of a pass: its inputs, read from the store: every chain's latest good head with its
lines, the price of every asset, and (when configured) EWMA volatilities."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aggregator.config import LoadedConfig
from aggregator.publish.portfolios import EPOCH, ObservedLine, ObservedPrice
from aggregator.store.database import Database
from aggregator.store.observations import ChainObservations, price_history
from aggregator.valuation import ewma_volatility


def observed_lines(observations: Mapping[str, ChainObservations]) -> list[ObservedLine]:
    lines: list[ObservedLine] = []
    for chain, obs in observations.items():
        for owned in obs.balances:
            b = owned.balance
            lines.append(
                ObservedLine(
                    user_id=owned.user_id,
                    chain=chain,
                    account=b.account,
                    asset=b.asset,
                    venue="wallet",
                    kind="balance",
                    amount_raw=b.amount_raw,
                    decimals=b.decimals,
                )
            )
        for owned_position in obs.positions:
            p = owned_position.position
            lines.append(
                ObservedLine(
                    user_id=owned_position.user_id,
                    chain=chain,
                    account=p.account,
                    asset=p.asset,
                    venue=p.venue,
                    kind=p.kind,
                    amount_raw=p.amount_raw,
                    decimals=p.decimals,
                    entry_price=p.entry_price,
                    market=p.market,
                )
            )
    return lines


async def observed_prices(
    database: Database, config: LoadedConfig, observations: Mapping[str, ChainObservations]
) -> dict[str, ObservedPrice]:
    """Per asset, the newest read of its configured source.

    A read that failed a check is never used as such: the last valid price stands in, dated
    the epoch, so the engine treats it as invalid (assets count 0, liabilities keep it).
    """
    out: dict[str, ObservedPrice] = {}
    for symbol, asset in config.assets.items():
        if asset.price is None or asset.price.chain not in observations:
            continue
        obs = observations[asset.price.chain]
        reads = [p for p in obs.prices if p.asset == symbol]
        if not reads:
            continue
        latest = reads[-1]
        if latest.valid:
            out[symbol] = ObservedPrice(
                symbol, latest.price, latest.conf, datetime.fromtimestamp(latest.publish_time, UTC)
            )
            continue
        async with database.session() as session:
            history = await price_history(session, symbol, EPOCH)
        if history:
            out[symbol] = ObservedPrice(symbol, history[-1][1], Decimal(0), EPOCH)
    return out


async def observed_volatilities(
    database: Database, config: LoadedConfig, as_of: datetime
) -> dict[str, Decimal]:
    """EWMA volatility per asset from stored prices, when the config asks for it."""
    if config.risk.volatility_source != "ewma":
        return {}
    since = as_of - timedelta(seconds=config.risk.ewma_window_seconds)
    out: dict[str, Decimal] = {}
    async with database.session() as session:
        for symbol in config.assets:
            history = await price_history(session, symbol, since)
            sigma = ewma_volatility(
                history, half_life_seconds=config.risk.ewma_half_life_seconds, as_of=as_of
            )
            if sigma is not None:
                out[symbol] = sigma
    return out
