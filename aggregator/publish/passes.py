"""A publish pass: stored observations → one margin status per user, shard by shard.

The pass reads its market once (`inputs.read_market`) and stores it (`valuation_markets`).
Then each shard (`user_id % [service] publish_shards`) runs in its own transaction under its
own advisory lock: read the shard's wallets and lines (`inputs`), build each user's portfolio
(`portfolios`), value its headline (`value`), render the stored document (`render`), and write
the rows that say something new (`write`). A shard another process holds is skipped: that
process is publishing it. History rows and NOTIFY only on material change.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from aggregator.config import LoadedConfig
from aggregator.publish.inputs import ShardInputs, read_market, read_shard
from aggregator.publish.market import PassMarket, shard_market
from aggregator.publish.render import (
    headline_document,
    iso_text,
    lines_digest,
    status_record,
    unread_chains,
)
from aggregator.publish.value import value_headline
from aggregator.publish.venues import read_points, stored_pairs, venue_json, venue_lines
from aggregator.publish.write import PUBLISH_LOCK, take_shard, tune_shard_session, write_shard
from aggregator.risk.output import headline_to_json
from aggregator.store.database import Database
from aggregator.store.observed.observation_reads import orphaned_head_ids
from aggregator.store.published.markets import record_market
from aggregator.store.published.statuses import StatusRecord
from aggregator.valuation.market import Market
from chains.gcpause import collector_paused

__all__ = ["PUBLISH_LOCK", "PublishReport", "ShardReport", "publish", "publish_shard"]


@dataclass(frozen=True)
class ShardReport:
    """One shard of a pass: users valued, rows written, material changes, and where its
    seconds went: reading its inputs, valuing and rendering (pure Python), writing (both
    database steps include the client's own work on the rows)."""

    index: int
    users: int
    written: int
    changed: int
    unvalued: tuple[str, ...] = ()
    skipped: bool = False
    seconds: float = 0.0
    read_seconds: float = 0.0
    value_seconds: float = 0.0
    write_seconds: float = 0.0

    @property
    def database_seconds(self) -> float:
        return self.read_seconds + self.write_seconds


@dataclass(frozen=True)
class PublishReport:
    users: int
    changed: int
    skipped: bool = False
    unvalued: tuple[str, ...] = ()  # "user: why", users who kept their last status
    written: int = 0
    shards: tuple[ShardReport, ...] = ()

    @property
    def skipped_shards(self) -> int:
        return sum(1 for shard in self.shards if shard.skipped)

    def describe(self) -> str:
        if self.skipped:
            return "publish: skipped (another process is publishing)"
        line = f"publish: {self.users} users, {self.written} written, {self.changed} changed"
        if self.skipped_shards:
            line += f"; {self.skipped_shards} shards skipped (another process has them)"
        if self.unvalued:
            line += f"; not valued (last status kept): {'; '.join(self.unvalued)}"
        return line


def value_shard(
    config: LoadedConfig, market: PassMarket, market_id: int, shard: ShardInputs
) -> tuple[list[StatusRecord], dict[int, str]]:
    """The stored status of every user of the shard (pure: no I/O), and the users that
    cannot be valued (they keep their last status)."""
    user_chains = {uid: [chain for chain, _ in rows] for uid, rows in shard.wallets.items()}
    lines = [line for rows in shard.lines.values() for line in rows]
    batch = market.portfolios(config, user_chains, lines)
    as_of = iso_text(market.as_of)
    # Per set of wallet chains (few per pass): which were read, at which heads, failing.
    views: dict[tuple[str, ...], tuple[list[str], dict[str, int], list[str]]] = {}
    records = []
    markets: dict[tuple[str, ...], Market] = {}
    points = read_points(market.reads)
    for user_id, portfolio in sorted(batch.portfolios.items()):
        chains = tuple(user_chains[user_id])
        view = views.get(chains)
        if view is None:
            read = sorted(chain for chain in set(chains) if chain in market.reads)
            view = (
                unread_chains(config, chains, market.reads),
                {chain: market.reads[chain].head_id for chain in read},
                [chain for chain in read if market.reads[chain].last_poll_failed],
            )
            views[chains] = view
        unread, heads, failing = view
        risk = headline_to_json(value_headline(portfolio, markets))
        unpriced = batch.unpriced.get(user_id, ())
        document = headline_document(user_id, shard.names[user_id], as_of, risk, unread, unpriced)
        held_venues = shard.venues.get(user_id)
        document["venues"] = (
            [
                venue_json(line, detail=False)
                for line in venue_lines(config, points, stored_pairs(held_venues), detail=False)
            ]
            if held_venues
            else []
        )
        wallets = shard.wallets[user_id]
        inputs = {
            "market": market_id,
            "heads": heads,
            "wallets": [list(w) for w in wallets],
            "digest": lines_digest(
                wallets, shard.lines.get(user_id, []), market.config, failing, unpriced
            ),
        }
        records.append(status_record(user_id, market.as_of, document, inputs))
    unvalued = {uid: f"{shard.names[uid]}: {why}" for uid, why in batch.unvalued.items()}
    return records, unvalued


async def publish_shard(
    database: Database,
    config: LoadedConfig,
    market: PassMarket,
    market_id: int,
    index: int,
    count: int,
    orphaned_heads: set[int],
    only_users: Collection[int] | None = None,
) -> ShardReport:
    """Value and write shard `index` of `count` in one transaction under its lock, against
    `market` (stored as `valuation_markets` row `market_id`); `only_users` values and writes
    only those users of the shard (the others are not read).

    May raise: DatabaseUnavailable.
    """
    started = time.perf_counter()
    with collector_paused():
        async with database.session() as session:
            if not await take_shard(session, index, count):
                return ShardReport(index, 0, 0, 0, skipped=True)
            await tune_shard_session(session)
            market, market_id = await shard_market(session, market, market_id, index, count)
            shard = await read_shard(session, market, index, count, only_users)
            read_done = time.perf_counter()
            records, unvalued = value_shard(config, market, market_id, shard)
            valued = time.perf_counter()
            counts = await write_shard(session, config, records, orphaned_heads)
        users = len(records)
        # Freed here by reference counting: with the collector back on, the first collection
        # would otherwise walk the shard's whole object graph once more (measured: ~5% of a
        # shard's time).
        del shard, records
    finished = time.perf_counter()
    return ShardReport(
        index,
        users=users,
        written=counts.written,
        changed=counts.changed,
        unvalued=tuple(unvalued[uid] for uid in sorted(unvalued)),
        seconds=finished - started,
        read_seconds=read_done - started,
        value_seconds=valued - read_done,
        write_seconds=finished - valued,
    )


async def publish(
    database: Database, config: LoadedConfig, as_of: datetime | None = None
) -> PublishReport:
    """Value every user with a wallet, shard by shard, each shard in its own transaction.

    May raise: DatabaseUnavailable.
    """
    as_of = as_of or await database.now()  # one clock for every process (`superseded`)
    market = await read_market(database, config, as_of)
    # Stored first, on its own: shards in other processes then find the row committed rather
    # than wait on one another's uncommitted insert. (A pass that dies leaves it unreferenced;
    # pruning removes it.)
    async with database.session() as session:
        market_id = await record_market(session, market.digest, market.as_of, market.to_document())
        orphaned = await orphaned_head_ids(session)
    count = config.service.publish_shards
    if config.service.publish_workers > 1:
        from aggregator.publish.workers import publish_shards_in_workers

        shards = await publish_shards_in_workers(
            config, database, market, market_id, count, orphaned
        )
    else:
        shards = [
            await publish_shard(database, config, market, market_id, index, count, orphaned)
            for index in range(count)
        ]
    done = [shard for shard in shards if not shard.skipped]
    return PublishReport(
        users=sum(shard.users for shard in done),
        changed=sum(shard.changed for shard in done),
        skipped=not done,
        unvalued=tuple(why for shard in done for why in shard.unvalued),
        written=sum(shard.written for shard in done),
        shards=tuple(shards),
    )
