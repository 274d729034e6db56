"""Poll chains: read a snapshot through the adapter and store it, or record the failure.

A poll either stores a complete snapshot in one transaction or stores only a failed poll_run;
the last good observations stay in place (publish then sees them as older, and flags staleness).

Reorgs: an adapter that re-checks heads (`HeadRechecking`: EVM, Solana) is given the heights of
the chain's recent stored heads; stored heads the chain no longer has are orphaned in the poll's
transaction, and the chain is polled again at once. A read lower than the stored head (a node
that is behind) is refused: a failed poll_run naming the endpoint, nothing else written.

An adapter that carries unread accounts over (`KeepsLastReads`: Hyperliquid, under its weight
budget) is handed the stored lines of its chain once, before its first poll in this process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from aggregator.polling.reorg import HeadVerdict, judge_read_point
from aggregator.store.accounts.users import wallets_by_chain
from aggregator.store.database import Database
from aggregator.store.locks import held_lock
from aggregator.store.observed.observation_reads import latest_observations, recent_heads
from aggregator.store.observed.observations import (
    PollFenced,
    ShardKey,
    record_poll_failure,
    record_snapshot,
)
from chains.base import (
    AdapterError,
    Address,
    ChainAdapter,
    ChainSnapshot,
    HeadRechecking,
    KeepsLastReads,
)

log = logging.getLogger("xmargin.polling")


@dataclass(frozen=True)
class ChainPollResult:
    chain: str
    ok: bool
    skipped: bool = False  # another process holds this chain's poll lock
    height: int | None = None
    duration_ms: int = 0
    request_count: int = 0
    wallets: int = 0
    issues: int = 0
    error: str | None = None
    orphaned_heads: int = 0  # stored heads this poll (and its re-poll) found replaced
    refused: bool = False  # the endpoint's head was lower than the stored one
    endpoint: str | None = None
    shard: ShardKey | None = None  # a (chain, shard) poll (`polling.shards`)
    fenced: bool = False  # the shard's cursor fence refused it: nothing written

    @property
    def name(self) -> str:
        return self.chain if self.shard is None else f"{self.chain} shard {self.shard}"

    def describe(self) -> str:
        if self.skipped:
            return f"poll {self.name}: skipped (another process is polling it)"
        if self.fenced:
            return f"poll {self.name}: fenced: {self.error}"
        if not self.ok:
            return f"poll {self.name}: FAILED after {self.duration_ms} ms: {self.error}"
        reorg = f", {self.orphaned_heads} heads orphaned (re-polled)" if self.orphaned_heads else ""
        return (
            f"poll {self.name}: block {self.height}, {self.wallets} wallets, "
            f"{self.request_count} requests, {self.issues} issues, {self.duration_ms} ms{reorg}"
        )


async def poll_chain(
    database: Database, adapter: ChainAdapter, wallet_owner: Mapping[str, int]
) -> ChainPollResult:
    """One poll of one chain under its advisory lock. Never raises for chain failures.

    May raise: DatabaseUnavailable (the store itself is down: nothing can be recorded).
    """
    async with held_lock(database, f"poll:{adapter.chain}") as taken:
        if not taken:
            return ChainPollResult(chain=adapter.chain, ok=True, skipped=True)
        first = await _poll_once(database, adapter, wallet_owner)
        if not first.orphaned_heads:
            return first
        # The chain reorganised under the stored heads: read it again at once, so the data
        # publish uses next is confirmed by a second read of the new chain.
        again = await _poll_once(database, adapter, wallet_owner)
        return replace(again, orphaned_heads=first.orphaned_heads + again.orphaned_heads)


async def _poll_once(
    database: Database,
    adapter: ChainAdapter,
    wallet_owner: Mapping[str, int],
    shard: ShardKey | None = None,
) -> ChainPollResult:
    """Read one snapshot and store it (orphaning replaced heads), or record why not. A shard
    poll (`shard`) stores behind its cursor fence (`record_snapshot`); a fenced one writes
    nothing and says so.

    May raise: DatabaseUnavailable.
    """
    chain = adapter.chain
    wallets = [Address(a) for a in wallet_owner]
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    rechecks = isinstance(adapter, HeadRechecking)
    stored = await recent_heads(database, chain) if rechecks else []
    if isinstance(adapter, KeepsLastReads) and adapter.needs_last_reads:
        await _restore_last_reads(database, adapter, chain)
    try:
        if isinstance(adapter, HeadRechecking):
            heights = [head.height for head in stored]
            snapshot = await adapter.snapshot_rechecking(wallets, heights)
        else:
            snapshot = await adapter.snapshot(wallets)
    except AdapterError as exc:
        duration_ms = round((time.perf_counter() - t0) * 1000)
        await record_poll_failure(database, chain, started_at, duration_ms, str(exc), shard=shard)
        return ChainPollResult(
            chain=chain, ok=False, duration_ms=duration_ms, error=str(exc), shard=shard
        )
    verdict = (
        judge_read_point(
            stored,
            snapshot.read_point,
            snapshot.head_checks,
            endpoint=snapshot.endpoint,
            hash_linked=snapshot.caip2.startswith("eip155:"),
        )
        if rechecks
        else HeadVerdict()
    )
    duration_ms = round((time.perf_counter() - t0) * 1000)
    if verdict.refusal is not None:
        error = f"{chain}: {verdict.refusal}"
        log.warning("poll %s: %s", chain, error)
        await record_poll_failure(
            database,
            chain,
            started_at,
            duration_ms,
            error,
            snapshot.endpoint,
            request_count=snapshot.request_count,
            shard=shard,
        )
        return ChainPollResult(
            chain=chain,
            ok=False,
            duration_ms=duration_ms,
            request_count=snapshot.request_count,
            error=error,
            refused=True,
            endpoint=snapshot.endpoint,
            shard=shard,
        )
    for orphaning in verdict.orphanings:
        log.warning(
            "poll %s: reorg: head %d orphaned (%s); re-polling",
            chain,
            orphaning.height,
            orphaning.reason,
        )
    try:
        await record_snapshot(
            database,
            snapshot,
            wallet_owner,
            started_at,
            duration_ms,
            verdict.orphanings,
            shard=shard,
        )
    except PollFenced as fenced:
        log.info("poll %s: %s", chain, fenced)
        return ChainPollResult(
            chain=chain,
            ok=True,
            height=snapshot.read_point.height,
            duration_ms=duration_ms,
            request_count=snapshot.request_count,
            wallets=len(wallet_owner),
            error=str(fenced),
            endpoint=snapshot.endpoint,
            shard=shard,
            fenced=True,
        )
    result = _stored(snapshot, len(wallet_owner), duration_ms, len(verdict.orphanings))
    return replace(result, shard=shard)


async def _restore_last_reads(database: Database, adapter: KeepsLastReads, chain: str) -> None:
    """Hand a fresh adapter the lines of the chain's latest stored head (accounts a budget-cut
    poll leaves unread keep them, even in a new process such as a cron `cycle`).

    May raise: DatabaseUnavailable.
    """
    async with database.session() as session:
        last = (await latest_observations(session)).get(chain)
    if last is None:
        adapter.restore_last_reads((), (), 0)
        return
    adapter.restore_last_reads(
        [owned.balance for owned in last.balances],
        [owned.position for owned in last.positions],
        last.read_point.timestamp,
    )


def _stored(
    snapshot: ChainSnapshot, wallets: int, duration_ms: int, orphaned: int
) -> ChainPollResult:
    return ChainPollResult(
        chain=snapshot.chain,
        ok=True,
        height=snapshot.read_point.height,
        duration_ms=duration_ms,
        request_count=snapshot.request_count,
        wallets=wallets,
        issues=len(snapshot.issues),
        orphaned_heads=orphaned,
        endpoint=snapshot.endpoint,
    )


async def wallet_owners(database: Database) -> dict[str, dict[str, int]]:
    """chain → {address: user_id} of every linked wallet."""
    async with database.session() as session:
        grouped = await wallets_by_chain(session)
    return {chain: {w.address: w.user_id for w in rows} for chain, rows in grouped.items()}


async def poll_chains(
    database: Database, adapters: Mapping[str, ChainAdapter]
) -> list[ChainPollResult]:
    """Poll every chain concurrently; one chain's failure does not stop the others."""
    owners = await wallet_owners(database)
    return list(
        await asyncio.gather(
            *(
                poll_chain(database, adapter, owners.get(chain, {}))
                for chain, adapter in adapters.items()
            )
        )
    )
