"""Poll chains: read a snapshot through the adapter and store it, or record the failure.

A poll either stores a complete snapshot in one transaction or stores only a failed poll_run;
the last good observations stay in place (publish then sees them as older, and flags staleness).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aggregator.store.database import Database
from aggregator.store.locks import held_lock
from aggregator.store.observations import record_poll_failure, record_snapshot
from aggregator.store.users import wallets_by_chain
from chains.base import AdapterError, Address, ChainAdapter


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

    def describe(self) -> str:
        if self.skipped:
            return f"poll {self.chain}: skipped (another process is polling it)"
        if not self.ok:
            return f"poll {self.chain}: FAILED after {self.duration_ms} ms: {self.error}"
        return (
            f"poll {self.chain}: block {self.height}, {self.wallets} wallets, "
            f"{self.request_count} requests, {self.issues} issues, {self.duration_ms} ms"
        )


async def poll_chain(
    database: Database, adapter: ChainAdapter, wallet_owner: Mapping[str, int]
) -> ChainPollResult:
    """One poll of one chain under its advisory lock. Never raises for chain failures.

    May raise: DatabaseUnavailable (the store itself is down: nothing can be recorded).
    """
    chain = adapter.chain
    async with held_lock(database, f"poll:{chain}") as taken:
        if not taken:
            return ChainPollResult(chain=chain, ok=True, skipped=True)
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        try:
            snapshot = await adapter.snapshot([Address(a) for a in wallet_owner])
        except AdapterError as exc:
            duration_ms = round((time.perf_counter() - t0) * 1000)
            await record_poll_failure(database, chain, started_at, duration_ms, str(exc))
            return ChainPollResult(chain=chain, ok=False, duration_ms=duration_ms, error=str(exc))
        duration_ms = round((time.perf_counter() - t0) * 1000)
        await record_snapshot(database, snapshot, wallet_owner, started_at, duration_ms)
        return ChainPollResult(
            chain=chain,
            ok=True,
            height=snapshot.read_point.height,
            duration_ms=duration_ms,
            request_count=snapshot.request_count,
            wallets=len(wallet_owner),
            issues=len(snapshot.issues),
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
