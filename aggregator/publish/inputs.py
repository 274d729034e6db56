"""Step 1 of a pass: its inputs, read from the store.

Once per pass, the market (`PassMarket`): every chain's latest good head, the price of every
asset and (when configured) EWMA volatilities. Per shard, in the shard's transaction: its users'
wallets and the lines read at the market's heads.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.config import LoadedConfig
from aggregator.publish.market import PassMarket, chain_reads, config_digest
from aggregator.publish.portfolios import EPOCH, ObservedLine, ObservedPrice
from aggregator.store.accounts.users import ShardWallet, wallets_of_shard
from aggregator.store.database import Database
from aggregator.store.observed.lines import HeldLine, lines_at_heads
from aggregator.store.observed.observation_reads import latest_observations, price_history
from aggregator.store.observed.observations import ChainObservations
from aggregator.store.observed.venue_reads import StoredVenue, venues_at_heads
from aggregator.valuation import ewma_volatility


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


async def read_market(database: Database, config: LoadedConfig, as_of: datetime) -> PassMarket:
    """The market of a pass valued at `as_of`.

    May raise: DatabaseUnavailable.
    """
    async with database.session() as session:
        observations = await latest_observations(session, lines=False)
    return PassMarket(
        as_of=as_of,
        reads=chain_reads(observations),
        prices=await observed_prices(database, config, observations),
        volatility=await observed_volatilities(database, config, as_of),
        config=config_digest(config),
    )


@dataclass(frozen=True)
class ShardInputs:
    """What one shard values: its users (id → name), their wallets, and their lines."""

    names: dict[int, str]
    wallets: dict[int, list[tuple[str, str]]]  # user → (chain key, address), by chain
    lines: dict[int, list[ObservedLine]]  # user → lines, in stored order
    venues: dict[int, list[StoredVenue]] = field(default_factory=dict)  # user → venue accounts


def group_shard(
    wallet_rows: Iterable[ShardWallet],
    held: Iterable[HeldLine],
    venues: Iterable[StoredVenue] = (),
) -> ShardInputs:
    names: dict[int, str] = {}
    wallets: dict[int, list[tuple[str, str]]] = {}
    for row in wallet_rows:
        names[row.user_id] = row.user_name
        wallets.setdefault(row.user_id, []).append((row.chain, row.address))
    lines: dict[int, list[ObservedLine]] = {}
    for line in held:
        if line.user_id in names:
            lines.setdefault(line.user_id, []).append(line)
    by_user: dict[int, list[StoredVenue]] = {}
    for venue in venues:
        if venue.user_id in names:
            by_user.setdefault(venue.user_id, []).append(venue)
    return ShardInputs(names, wallets, lines, by_user)


async def read_shard(
    session: AsyncSession,
    market: PassMarket,
    index: int,
    count: int,
    only_users: Collection[int] | None = None,
) -> ShardInputs:
    """The users of shard `index` of `count` (`user_id % count = index`) with a wallet, and
    their lines and venue accounts at the market's heads; `only_users` keeps those users (a
    revaluation of the users a price move touched)."""
    wallet_rows = await wallets_of_shard(session, index, count)
    if only_users is not None:
        wanted = set(only_users)
        wallet_rows = [row for row in wallet_rows if row.user_id in wanted]
    heads = [read.head_id for read in market.for_shard(index, count).reads.values()]
    users = sorted({row.user_id for row in wallet_rows})
    held = await lines_at_heads(session, heads, user_ids=users) if users else []
    venues = await venues_at_heads(session, heads, user_ids=users) if users else []
    return group_shard(wallet_rows, held, venues)
