"""A dispatch: one round of work deferred, as `xmargin cycle` would do it in one process.

A round is the polls of `[work] round_polls` and one `publish` job (and `deliver_alerts`
when webhooks are configured, and `prune`). The polls, per chain:

- "chain": one `poll` job (every wallet of the chain);
- "shards": one `poll_shard` job per shard (`user_id % [service] publish_shards`) holding a
  wallet of the chain, so many workers read one chain at once;
- "activity": an EVM chain gets its head follower (`follow`: refreshes of the shards whose
  wallets its logs touched) and a Solana chain with `ws_url` is left to its watcher; both get
  the sweeper (a `sweep` job when the chain's `sweep_seconds` have passed: it defers every
  shard's `poll_shard`). Other chains as "shards".

Hyperliquid chains are always polled whole (`polling.shards`: their carried-over reads are the
chain's). Every job carries a queueing lock, so while a
round's job waits in the queue, dispatching again defers nothing for it (`AlreadyEnqueued`
is the expected answer, counted as "still queued"). Two dispatchers (every worker's periodic
dispatcher, a cron `xmargin dispatch`) can therefore run at any time without doubling work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from procrastinate import App
from procrastinate.exceptions import AlreadyEnqueued

from aggregator.config import LoadedConfig
from aggregator.store.database import Database
from aggregator.work.locks import (
    DELIVER_ALERTS,
    DELIVER_LOCK,
    FOLLOW,
    POLL,
    POLL_SHARD,
    PRUNE,
    PRUNE_LOCK,
    PUBLISH,
    PUBLISH_LOCK,
    SWEEP,
    follow_lock,
    poll_lock,
    poll_shard_lock,
    sweep_lock,
)
from aggregator.work.passes import PUBLISH_PRIORITY
from aggregator.work.sweep import shards_with_wallets, sweep_due

POLL_PRIORITY = 10
FOLLOW_PRIORITY = 30  # a follower is cheap and its refreshes are the freshest work


@dataclass
class DispatchReport:
    deferred: dict[str, int] = field(default_factory=dict)  # queueing lock → job id
    still_queued: list[str] = field(default_factory=list)

    @property
    def noop(self) -> bool:
        return not self.deferred

    def lines(self) -> list[str]:
        return [f"dispatch: {lock} deferred (job {job})" for lock, job in self.deferred.items()] + [
            f"dispatch: {lock} still queued (not deferred again)" for lock in self.still_queued
        ]


async def _defer(
    app: App, report: DispatchReport, task: str, lock: str, priority: int, **kwargs: str | int
) -> None:
    try:
        job_id = await app.configure_task(
            task, lock=lock, queueing_lock=lock, priority=priority
        ).defer_async(**kwargs)
    except AlreadyEnqueued:
        report.still_queued.append(lock)
    else:
        report.deferred[lock] = job_id


def activity_covered(config: LoadedConfig, chain: str) -> bool:
    """Whether, with `round_polls = "activity"`, something watches `chain`'s activity (the
    EVM head follower, the Solana watcher with `ws_url`) so rounds need not poll it."""
    settings = config.chains[chain]
    return settings.family == "evm" or (settings.family == "solana" and settings.ws_url is not None)


async def _defer_shards(
    app: App, report: DispatchReport, database: Database | None, config: LoadedConfig, chain: str
) -> None:
    count = config.service.publish_shards
    shards = range(count) if database is None else await shards_with_wallets(database, chain, count)
    for index in shards:
        await _defer(
            app,
            report,
            POLL_SHARD,
            poll_shard_lock(chain, index, count),
            POLL_PRIORITY,
            chain=chain,
            index=index,
            count=count,
        )


async def _defer_polls(
    app: App, report: DispatchReport, database: Database | None, config: LoadedConfig
) -> None:
    mode = config.work.round_polls
    for chain, settings in config.chains.items():
        if mode == "chain" or settings.family == "hyperliquid":
            await _defer(app, report, POLL, poll_lock(chain), POLL_PRIORITY, chain=chain)
        elif mode == "activity" and activity_covered(config, chain):
            if settings.family == "evm":
                await _defer(app, report, FOLLOW, follow_lock(chain), FOLLOW_PRIORITY, chain=chain)
            period = timedelta(seconds=config.work.sweep_seconds)
            if database is None or await sweep_due(database, chain, period):
                await _defer(app, report, SWEEP, sweep_lock(chain), POLL_PRIORITY, chain=chain)
        else:
            await _defer_shards(app, report, database, config, chain)


async def dispatch_round(
    app: App, config: LoadedConfig, database: Database | None = None
) -> DispatchReport:
    """Defer one round; what was already queued is left as it is. `database` tells the
    shard modes which shards hold wallets (without it every shard is deferred) and whether a
    chain's sweep is due (without it a `sweep` job is deferred each round: it claims the
    period itself, so one that is not due does nothing).

    May raise: procrastinate.exceptions.ConnectorException (the database is unreachable),
    DatabaseUnavailable.
    """
    report = DispatchReport()
    await _defer_polls(app, report, database, config)
    await _defer(app, report, PUBLISH, PUBLISH_LOCK, PUBLISH_PRIORITY)
    if config.alerts.webhooks:
        await _defer(app, report, DELIVER_ALERTS, DELIVER_LOCK, 0)
    await _defer(app, report, PRUNE, PRUNE_LOCK, 0)
    return report
