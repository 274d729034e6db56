"""Revaluation driven by prices: a price move revalues only the users exposed to it.

A price needs no chain read of anyone's balances: the lines are already stored. `reprice`
reads the current market (`read_market`: every chain's latest good head and the newest valid
price per asset), compares its prices with those of the last stored market (the newest
`valuation_markets` row, which every pass and every repricing stores), and takes the assets
whose price differs. The users exposed to them are those with a non-zero balance or position
in one of them at the market's heads (one query). Only they are valued and written, shard by
shard, each shard in its own transaction under the same advisory lock a publish pass takes
(`publish_shard` with `only_users`); everyone else is neither read nor valued.

What it cannot see: anything but a price (a balance change needs a poll; data ageing into
stale is left to the next full pass, which still values everyone), and a price move within
the same stored read (prices are read by polls of the price chain).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Text, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.config import LoadedConfig
from aggregator.publish.inputs import read_market
from aggregator.publish.passes import ShardReport, publish_shard
from aggregator.publish.portfolios import ObservedPrice
from aggregator.store import models as m
from aggregator.store.database import Database
from aggregator.store.observed.observation_reads import orphaned_head_ids
from aggregator.store.published.markets import record_market

__all__ = ["RepriceReport", "exposed_users", "moved_assets", "reprice"]


@dataclass(frozen=True)
class RepriceReport:
    """One repricing: the assets whose price moved, the users valued (exposed to them) and
    what was written, per shard."""

    moved: tuple[str, ...] = ()
    users: int = 0
    written: int = 0
    changed: int = 0
    shards: tuple[ShardReport, ...] = ()
    first: bool = False  # no stored market yet: a full publish pass comes first

    def describe(self) -> str:
        if self.first:
            return "reprice: no stored market yet (a publish pass values everyone first)"
        if not self.moved:
            return "reprice: no price moved since the last stored market"
        skipped = sum(1 for shard in self.shards if shard.skipped)
        line = (
            f"reprice: {', '.join(self.moved)} moved; {self.users} exposed users valued,"
            f" {self.written} written, {self.changed} changed"
        )
        return line + (f"; {skipped} shards skipped (another process has them)" if skipped else "")


def moved_assets(before: Mapping[str, Decimal], after: Mapping[str, ObservedPrice]) -> list[str]:
    """Assets whose price now differs from `before` (the last stored market's), appeared or
    vanished, sorted."""
    symbols = set(before) | set(after)
    return sorted(
        symbol
        for symbol in symbols
        if symbol not in before or symbol not in after or after[symbol].price != before[symbol]
    )


async def last_market_prices(session: AsyncSession) -> dict[str, Decimal] | None:
    """Asset → price of the newest stored market; None when no market was stored yet."""
    row = (
        await session.execute(
            select(m.ValuationMarket.inputs).order_by(m.ValuationMarket.id.desc()).limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return {symbol: Decimal(p["price"]) for symbol, p in (row.get("prices") or {}).items()}


_EXPOSED = text(
    """
    SELECT user_id FROM balances
    WHERE chain_head_id = ANY(:heads) AND asset = ANY(:assets) AND amount_raw <> 0
    UNION
    SELECT user_id FROM positions
    WHERE chain_head_id = ANY(:heads) AND asset = ANY(:assets) AND amount_raw <> 0
    """
).bindparams(bindparam("heads", type_=ARRAY(BigInteger)), bindparam("assets", type_=ARRAY(Text)))


async def exposed_users(session: AsyncSession, head_ids: list[int], assets: list[str]) -> list[int]:
    """Users holding or owing any of `assets` (a non-zero line) at `head_ids`, ascending."""
    if not head_ids or not assets:
        return []
    rows = await session.execute(_EXPOSED, {"heads": head_ids, "assets": assets})
    return sorted(int(user_id) for (user_id,) in rows)


async def reprice(
    database: Database, config: LoadedConfig, as_of: datetime | None = None
) -> RepriceReport:
    """Revalue the users exposed to the assets whose price moved since the last stored
    market, from stored observations, shard by shard (see the module's text).

    May raise: DatabaseUnavailable.
    """
    as_of = as_of or await database.now()  # one clock for every process (`superseded`)
    market = await read_market(database, config, as_of)
    async with database.session() as session:
        before = await last_market_prices(session)
        if before is None:
            return RepriceReport(first=True)
        moved = moved_assets(before, market.prices)
        if not moved:
            return RepriceReport()
        market_id = await record_market(session, market.digest, market.as_of, market.to_document())
        orphaned = await orphaned_head_ids(session)
        # Every head a shard may read: the whole-chain ones and the shards' own.
        heads = sorted({r.head_id for read in market.reads.values() for r in (read, *read.shards)})
        users = await exposed_users(session, heads, moved)
    count = config.service.publish_shards
    by_shard: dict[int, list[int]] = {}
    for user_id in users:
        by_shard.setdefault(user_id % count, []).append(user_id)
    shards = [
        await publish_shard(
            database, config, market, market_id, index, count, orphaned, only_users=members
        )
        for index, members in sorted(by_shard.items())
    ]
    done = [shard for shard in shards if not shard.skipped]
    return RepriceReport(
        moved=tuple(moved),
        users=sum(shard.users for shard in done),
        written=sum(shard.written for shard in done),
        changed=sum(shard.changed for shard in done),
        shards=tuple(shards),
    )
