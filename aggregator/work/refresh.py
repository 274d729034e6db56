"""Refresh driven by activity: the shards of the wallets something saw change, re-polled.

A watcher (the EVM head follower, `work.follow`; the Solana account-change subscriber) knows
which addresses a block touched, not who owns them. `refresh_wallets` maps those addresses to
the users that linked them on that chain, the users to their shard (`user_id % [service]
publish_shards`, the same shards a publish pass writes), and defers one `poll_shard` job per
touched shard. The job's lock and queueing lock are the shard's (`poll_shard_lock`): while a
refresh of that shard still waits in the queue, deferring it again is refused
(`AlreadyEnqueued`) and counted as still queued; the waiting job will read the newer block
anyway. Addresses nobody linked are ignored (a token moves between strangers all day).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from procrastinate import App
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import select

from aggregator.config import LoadedConfig
from aggregator.store import models as m
from aggregator.store.database import Database
from aggregator.work.locks import POLL_SHARD, poll_shard_lock

REFRESH_PRIORITY = 20  # before a round's polls (10): someone just acted on these wallets


@dataclass
class RefreshReport:
    chain: str
    addresses: int = 0  # distinct addresses asked about
    wallets: int = 0  # of those, linked wallets of the chain
    shards: list[int] = field(default_factory=list)  # touched shard indices, ascending
    deferred: dict[int, int] = field(default_factory=dict)  # shard index → job id
    still_queued: list[int] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"refresh {self.chain}: {self.addresses} addresses, {self.wallets} linked wallets, "
            f"shards {self.shards or '[]'}: {len(self.deferred)} deferred, "
            f"{len(self.still_queued)} still queued"
        )


async def linked_owners(database: Database, chain: str, addresses: Iterable[str]) -> dict[str, int]:
    """address → user_id of the given addresses that are linked wallets of `chain` (addresses
    in their canonical spelling, as stored: EIP-55 for EVM, base58 for Solana).

    May raise: DatabaseUnavailable.
    """
    wanted = sorted(set(addresses))
    if not wanted:
        return {}
    async with database.session() as session:
        rows = await session.execute(
            select(m.Wallet.address, m.Wallet.user_id).where(
                m.Wallet.chain == chain, m.Wallet.address.in_(wanted)
            )
        )
        return {address: user_id for address, user_id in rows}


async def defer_shard_poll(
    app: App,
    chain: str,
    index: int,
    count: int,
    *,
    priority: int = REFRESH_PRIORITY,
    attempt: int = 0,
    delay_seconds: float = 0,
) -> int | None:
    """Defer one `poll_shard` job (`attempt` > 0: a retry of a failed one, run after
    `delay_seconds`); its job id, or None when one is still queued (it does the same work).

    May raise: procrastinate.exceptions.ConnectorException.
    """
    lock = poll_shard_lock(chain, index, count)
    args: dict[str, int | str] = {"chain": chain, "index": index, "count": count}
    if attempt:
        args["attempt"] = attempt
    try:
        job_id: int = await app.configure_task(
            POLL_SHARD,
            lock=lock,
            queueing_lock=lock,
            priority=priority,
            schedule_in={"seconds": delay_seconds} if delay_seconds else None,
        ).defer_async(**args)
    except AlreadyEnqueued:
        return None
    return job_id


async def refresh_wallets(
    app: App,
    database: Database,
    config: LoadedConfig,
    chain: str,
    addresses: Iterable[str],
) -> RefreshReport:
    """Defer a `poll_shard` of each shard holding one of `addresses` (linked wallets of
    `chain`); the rest are ignored.

    May raise: ValueError (`chain` is not configured), DatabaseUnavailable,
    procrastinate.exceptions.ConnectorException.
    """
    if chain not in config.chains:
        raise ValueError(f"refresh: no chain {chain!r} in {config.path}")
    wanted = set(addresses)
    report = RefreshReport(chain=chain, addresses=len(wanted))
    owners = await linked_owners(database, chain, wanted)
    report.wallets = len(owners)
    count = config.service.publish_shards
    report.shards = sorted({user_id % count for user_id in owners.values()})
    for index in report.shards:
        job_id = await defer_shard_poll(app, chain, index, count)
        if job_id is None:
            report.still_queued.append(index)
        else:
            report.deferred[index] = job_id
    return report
