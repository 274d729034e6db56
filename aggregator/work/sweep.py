"""The sweeper: every shard of a chain polled at least once per `[work] sweep_seconds`.

Activity-driven refresh sees only what logs and account notifications show. The sweeper is
what bounds everything else (a native-coin transfer, a rebasing token, interest accruing on
aToken and debt balances, a notification lost while a socket was down): with `round_polls =
"activity"`, each dispatch looks whether the chain's period has passed (`sweep_due`) and,
when it has, defers a `sweep` job (the task `xmargin.sweep`, lock and queueing lock
`sweep:<chain>`); the job claims the period (`claim_sweep`) and defers a `poll_shard` of every
shard that holds a wallet of the chain. An unseen change therefore lasts at most one sweep
period (plus the time the jobs wait in the queue).

The claim is a conditional upsert of `poll_sweeps.swept_at` (only when older than the
period), so of several sweep jobs (a cron `xmargin dispatch` beside the workers' dispatcher)
one sweeps; the shard jobs' queueing locks make even a doubled sweep defer each shard once.
The sweep job has no retry and is no periodic task (procrastinate #1495 and #1543 do not
apply): a failed one is deferred again by the next dispatch, its period still unclaimed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from procrastinate import App
from sqlalchemy import func, select, text

from aggregator.config import LoadedConfig
from aggregator.store import models as m
from aggregator.store.database import Database
from aggregator.work.refresh import defer_shard_poll

SWEEP_PRIORITY = 0  # below a round's polls (10) and refreshes (20): background work

_CLAIM = text(
    """
    INSERT INTO poll_sweeps AS s (chain, swept_at) VALUES (:chain, now())
    ON CONFLICT (chain) DO UPDATE SET swept_at = now()
        WHERE s.swept_at <= now() - make_interval(secs => :period)
    RETURNING s.chain
    """
)


@dataclass
class SweepReport:
    chain: str
    due: bool = False
    deferred: dict[int, int] = field(default_factory=dict)  # shard → job id
    still_queued: list[int] = field(default_factory=list)

    def describe(self) -> str:
        if not self.due:
            return f"sweep {self.chain}: not due"
        return (
            f"sweep {self.chain}: {len(self.deferred)} shard polls deferred, "
            f"{len(self.still_queued)} still queued"
        )


async def shards_with_wallets(database: Database, chain: str, count: int) -> list[int]:
    """The shard indices (`user_id % count`) holding at least one wallet of `chain`.

    May raise: DatabaseUnavailable.
    """
    async with database.session() as session:
        shard = (m.Wallet.user_id % count).label("shard")
        rows = await session.scalars(
            select(shard).where(m.Wallet.chain == chain).group_by(shard).order_by(shard)
        )
        return [int(index) for index in rows]


async def sweep_due(database: Database, chain: str, period: timedelta) -> bool:
    """Whether `chain`'s last sweep is `period` old, or it never had one (a look only: the
    sweep job's `claim_sweep` decides).

    May raise: DatabaseUnavailable.
    """
    async with database.session() as session:
        due = await session.scalar(
            select(m.PollSweep.swept_at <= func.now() - period).where(m.PollSweep.chain == chain)
        )
        return due is None or bool(due)


async def claim_sweep(database: Database, chain: str, period: timedelta) -> bool:
    """Whether this caller sweeps `chain` now (its last sweep is `period` old, or none).

    May raise: DatabaseUnavailable.
    """
    async with database.session() as session:
        claimed = await session.scalar(_CLAIM, {"chain": chain, "period": period.total_seconds()})
        return claimed is not None


async def sweep_chain(
    app: App, database: Database, config: LoadedConfig, chain: str, *, force: bool = False
) -> SweepReport:
    """Defer a poll of every shard of `chain` with a wallet when its sweep is due (`force`:
    whatever the period).

    May raise: DatabaseUnavailable, procrastinate.exceptions.ConnectorException.
    """
    report = SweepReport(chain=chain)
    period = timedelta(seconds=0 if force else config.work.sweep_seconds)
    if not await claim_sweep(database, chain, period):
        return report
    report.due = True
    count = config.service.publish_shards
    for index in await shards_with_wallets(database, chain, count):
        job_id = await defer_shard_poll(app, chain, index, count, priority=SWEEP_PRIORITY)
        if job_id is None:
            report.still_queued.append(index)
        else:
            report.deferred[index] = job_id
    return report
