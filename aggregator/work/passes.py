"""A publish pass on the queue: one `publish` job stores the pass's market and defers one
`publish_shard` job per shard; each shard job writes its shard behind the fence.

The pass job does what `publish.passes.publish` does before its shards (`read_market`,
`record_market`, `orphaned_head_ids`), then hands each shard job the market's document and the
orphaned heads: a shard job on any worker values against the same market. The shard job stores
that market again by digest (`record_market` returns the pass's row, or stores it anew if a
prune removed it meanwhile) and runs the unchanged `publish_shard` through `FencedDatabase`.

The pass is named by its job (`job:<id>`): a retried or duplicated shard job of that pass finds
the pass's marker and writes nothing. A shard whose previous job is still queued is not
deferred again (queueing lock `publish:<i>/<N>`): the queued job publishes it, from its own
(slightly older) market, and the next pass catches up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from procrastinate import App
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.types import JSONValue

from aggregator.config import LoadedConfig
from aggregator.publish.inputs import read_market
from aggregator.publish.market import PassMarket
from aggregator.publish.passes import ShardReport, publish_shard
from aggregator.store.database import Database
from aggregator.store.observed.observation_reads import orphaned_head_ids
from aggregator.store.published.markets import record_market
from aggregator.work.fence import FencedDatabase, ShardAlreadyPublished, ShardBusy
from aggregator.work.locks import PUBLISH_SHARD, publish_shard_lock

log = logging.getLogger("xmargin.work")

PUBLISH_PRIORITY = 5  # below the polls of the same round: they are fetched first


@dataclass(frozen=True)
class PassStarted:
    pass_key: str
    market_id: int
    deferred: tuple[int, ...]  # shard indexes
    still_queued: tuple[int, ...]

    def describe(self) -> str:
        line = (
            f"publish {self.pass_key}: market {self.market_id}, "
            f"{len(self.deferred)} shard jobs deferred"
        )
        if self.still_queued:
            line += f", {len(self.still_queued)} shards still queued from an earlier pass"
        return line


async def start_pass(
    app: App, database: Database, config: LoadedConfig, pass_key: str
) -> PassStarted:
    """Store the pass's market and defer its shard jobs.

    May raise: DatabaseUnavailable.
    """
    market = await read_market(database, config, await database.now())
    async with database.session() as session:
        market_id = await record_market(session, market.digest, market.as_of, market.to_document())
        orphaned: list[JSONValue] = [*sorted(await orphaned_head_ids(session))]
    count = config.service.publish_shards
    document = market.to_document()
    deferred, queued = [], []
    for index in range(count):
        lock = publish_shard_lock(index, count)
        try:
            await app.configure_task(
                PUBLISH_SHARD, lock=lock, queueing_lock=lock, priority=PUBLISH_PRIORITY
            ).defer_async(
                pass_key=pass_key,
                index=index,
                count=count,
                market=document,
                orphaned=orphaned,
            )
            deferred.append(index)
        except AlreadyEnqueued:
            queued.append(index)
    return PassStarted(pass_key, market_id, tuple(deferred), tuple(queued))


@dataclass(frozen=True)
class ShardOutcome:
    pass_key: str
    index: int
    count: int
    report: ShardReport | None = None
    fenced: str | None = None  # why nothing was written: "busy" or "already published"

    def describe(self) -> str:
        name = f"publish shard {self.index}/{self.count} of {self.pass_key}"
        if self.report is None:
            return f"{name}: skipped ({self.fenced})"
        r = self.report
        return f"{name}: {r.users} users, {r.written} written, {r.changed} changed"


async def run_shard(
    database: Database,
    config: LoadedConfig,
    pass_key: str,
    index: int,
    count: int,
    market: dict[str, Any],
    orphaned: Sequence[int],
) -> ShardOutcome:
    """Write one shard of the pass behind the fence (`fence`), at most once per pass.

    May raise: DatabaseUnavailable.
    """
    pass_market = PassMarket.from_document(market)
    async with database.session() as session:
        market_id = await record_market(
            session, pass_market.digest, pass_market.as_of, pass_market.to_document()
        )
    fenced = FencedDatabase(database, pass_key, index, count, market_id)
    try:
        report = await publish_shard(
            fenced, config, pass_market, market_id, index, count, set(orphaned)
        )
    except ShardBusy:
        return ShardOutcome(pass_key, index, count, fenced="another process is writing it")
    except ShardAlreadyPublished:
        return ShardOutcome(pass_key, index, count, fenced="already published for this pass")
    return ShardOutcome(pass_key, index, count, report=report)
