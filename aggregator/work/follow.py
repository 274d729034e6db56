"""The EVM head follower: each new block's logs, turned into refreshes of the touched shards.

One `follow` job per EVM chain per round (deferred by the dispatcher when `[work] round_polls =
"activity"`; lock and queueing lock `follow:<chain>`, and the same advisory lock inside, so one
follower per chain runs at a time across all workers). A run:

1. reads the chain's read point the way its polls do (`finality`: `finalized`, `safe`,
   `latest`, `latest-N`) and the stored cursor (`follow_cursors.last_block`);
2. reads the logs of blocks cursor+1 .. read point (less `[work] follow_overlap_blocks` below
   the cursor, re-read) in ranges of `[work] follow_max_blocks`, halved while a provider
   refuses them (`chains.evm.logs.read_logs`);
3. per range, hands the addresses that range's ERC-20 `Transfer`s of configured tokens and
   Aave events of configured pools touched to `refresh_wallets` (a `poll_shard` job per
   touched shard), then advances the cursor past the range.

So a gap (a node restarted, no worker for an hour) back-fills from the last processed block,
range by range; a run killed midway resumes after the last range whose refreshes were
deferred (a range may be refreshed twice, never skipped). The first run of a chain has no
cursor: it starts at the current read point (what happened before is what polls and the
sweeper have read). Reorgs: the follower reads only up to the read point, which a reorg of the
configured finality does not reach (`finalized`, `safe`; `latest-N` for reorgs up to N deep);
on `latest`, `follow_overlap_blocks` re-reads that many blocks each run, so a shallow reorg's
replacement blocks are read too. What logs cannot show (native coin, rebasing balances,
interest accrual, oracle moves) waits for the sweeper (`work.sweep`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from procrastinate import App
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from aggregator.config import LoadedConfig
from aggregator.specs import chain_spec
from aggregator.store import models as m
from aggregator.store.database import Database
from aggregator.store.locks import held_lock
from aggregator.work.locks import follow_lock
from aggregator.work.refresh import refresh_wallets
from chains.base import AdapterError
from chains.evm.adapter import FinalityRule
from chains.evm.logs import LogQuery, read_logs, touched_addresses
from chains.evm.rpc import EndpointPool, RequestMeter
from chains.evm.spec import EvmChainSpec

log = logging.getLogger("xmargin.work.follow")


@dataclass
class FollowReport:
    chain: str
    skipped: bool = False  # another process follows the chain now
    error: str | None = None
    first: int | None = None  # blocks read this run
    last: int | None = None
    cursor: int | None = None  # the stored cursor after the run
    requests: int = 0
    shrinks: int = 0
    logs: int = 0
    touched: int = 0  # distinct addresses the logs touched
    shards: list[int] = field(default_factory=list)  # shards refreshed (deferred or queued)

    def describe(self) -> str:
        name = f"follow {self.chain}"
        if self.skipped:
            return f"{name}: skipped (another process follows it)"
        if self.error is not None:
            return f"{name}: FAILED at cursor {self.cursor}: {self.error}"
        if self.first is None:
            return f"{name}: at block {self.cursor}, nothing new"
        shrunk = f", {self.shrinks} ranges halved" if self.shrinks else ""
        return (
            f"{name}: blocks {self.first}-{self.last}, {self.logs} logs, {self.touched} "
            f"addresses, shards {self.shards}, {self.requests} requests{shrunk}"
        )


def log_query(spec: EvmChainSpec) -> LogQuery:
    """The configured token contracts and Aave pools of a chain."""
    return LogQuery(
        tokens=tuple(t.address for t in spec.tokens if t.address is not None),
        pools=tuple(p.pool for p in spec.aave_pools),
    )


async def read_point_height(pool: EndpointPool, rule: FinalityRule, meter: RequestMeter) -> int:
    """The block number a poll of this finality would read at now.

    May raise: AdapterError.
    """
    block = await pool.request("eth_getBlockByNumber", [rule.tag, False], meter)
    try:
        height = int(block["number"], 16)
    except (KeyError, TypeError, ValueError) as exc:
        raise AdapterError(f"{pool.chain}: no {rule.tag} block from the node ({exc!r})") from None
    return max(0, height - rule.depth)


async def stored_cursor(database: Database, chain: str) -> int | None:
    async with database.session() as session:
        last: int | None = await session.scalar(
            select(m.FollowCursor.last_block).where(m.FollowCursor.chain == chain)
        )
        return last


async def store_cursor(database: Database, chain: str, block: int) -> None:
    """Set the cursor to `block` (only ever forward: a late run never moves it back)."""
    async with database.session() as session:
        table = m.FollowCursor.__table__
        statement = insert(m.FollowCursor).values(chain=chain, last_block=block)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[m.FollowCursor.chain],
                set_={"last_block": statement.excluded.last_block, "updated_at": func.now()},
                where=table.c.last_block < statement.excluded.last_block,
            )
        )


async def follow_chain(
    app: App,
    database: Database,
    config: LoadedConfig,
    chain: str,
    *,
    pool: EndpointPool | None = None,
) -> FollowReport:
    """One follower run of EVM chain `chain` (see the module docstring). Never raises for
    chain failures (the report says, the cursor stays); `pool` reuses the caller's
    endpoints.

    May raise: ValueError (not an EVM chain of the config), DatabaseUnavailable,
    procrastinate.exceptions.ConnectorException.
    """
    if chain not in config.chains or config.chains[chain].family != "evm":
        raise ValueError(f"follow: {chain!r} is not an EVM chain of {config.path}")
    spec = chain_spec(config, chain)
    assert isinstance(spec, EvmChainSpec)
    work = config.work
    report = FollowReport(chain=chain)
    async with held_lock(database, follow_lock(chain)) as taken:
        if not taken:
            report.skipped = True
            return report
        own = pool is None
        endpoints = pool or EndpointPool(chain, spec.endpoints)
        try:
            await _follow(app, database, config, spec, endpoints, work.follow_max_blocks, report)
        except AdapterError as exc:
            report.error = str(exc)
            log.warning("follow %s: %s (cursor stays at %s)", chain, exc, report.cursor)
        finally:
            if own:
                await endpoints.aclose()
    return report


async def _follow(
    app: App,
    database: Database,
    config: LoadedConfig,
    spec: EvmChainSpec,
    pool: EndpointPool,
    max_blocks: int,
    report: FollowReport,
) -> None:
    """May raise: AdapterError, DatabaseUnavailable, ConnectorException."""
    chain = spec.chain
    meter = RequestMeter()
    head = await read_point_height(pool, FinalityRule.parse(spec.finality), meter)
    report.requests = meter.count
    cursor = await stored_cursor(database, chain)
    if cursor is None:
        await store_cursor(database, chain, head)
        report.cursor = head
        log.info("follow %s: no cursor: starting at block %d", chain, head)
        return
    report.cursor = cursor
    first = max(0, cursor + 1 - config.work.follow_overlap_blocks)
    if head <= cursor:
        return
    query = log_query(spec)
    report.first, report.last = first, head
    shards: set[int] = set()
    start = first
    size = max_blocks
    while start <= head:
        end = min(head, start + size - 1)
        if query.empty:
            logs: list[dict[str, Any]] = []
        else:
            read = await read_logs(pool, query, start, end, size, meter)
            logs = read.logs
            report.shrinks += read.shrinks
            size = read.max_blocks
        try:
            touched = touched_addresses(logs, query)
        except ValueError as exc:
            raise AdapterError(
                f"{chain}: a log in blocks {start}-{end} did not decode: {exc}"
            ) from None
        report.logs += len(logs)
        report.touched += len(touched)
        if touched:
            refreshed = await refresh_wallets(app, database, config, chain, sorted(touched))
            shards.update(refreshed.shards)
        # After the refreshes are deferred: a run killed here reads the range again.
        await store_cursor(database, chain, end)
        report.cursor = end
        start = end + 1
    report.requests = meter.count
    report.shards = sorted(shards)
