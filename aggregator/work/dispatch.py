"""A dispatch: one round of work deferred, as `xmargin cycle` would do it in one process.

A round is one `poll` job per configured chain and one `publish` job (and `deliver_alerts`
when webhooks are configured, and `prune`). Every job carries a queueing lock, so while a
round's job waits in the queue, dispatching again defers nothing for it (`AlreadyEnqueued`
is the expected answer, counted as "still queued"). Two dispatchers (every worker's periodic
dispatcher, a cron `xmargin dispatch`) can therefore run at any time without doubling work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from procrastinate import App
from procrastinate.exceptions import AlreadyEnqueued

from aggregator.config import LoadedConfig
from aggregator.work.locks import (
    DELIVER_ALERTS,
    DELIVER_LOCK,
    POLL,
    PRUNE,
    PRUNE_LOCK,
    PUBLISH,
    PUBLISH_LOCK,
    poll_lock,
)
from aggregator.work.passes import PUBLISH_PRIORITY

POLL_PRIORITY = 10


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
    app: App, report: DispatchReport, task: str, lock: str, priority: int, **kwargs: str
) -> None:
    try:
        job_id = await app.configure_task(
            task, lock=lock, queueing_lock=lock, priority=priority
        ).defer_async(**kwargs)
    except AlreadyEnqueued:
        report.still_queued.append(lock)
    else:
        report.deferred[lock] = job_id


async def dispatch_round(app: App, config: LoadedConfig) -> DispatchReport:
    """Defer one round; what was already queued is left as it is.

    May raise: procrastinate.exceptions.ConnectorException (the database is unreachable).
    """
    report = DispatchReport()
    for chain in config.chains:
        await _defer(app, report, POLL, poll_lock(chain), POLL_PRIORITY, chain=chain)
    await _defer(app, report, PUBLISH, PUBLISH_LOCK, PUBLISH_PRIORITY)
    if config.alerts.webhooks:
        await _defer(app, report, DELIVER_ALERTS, DELIVER_LOCK, 0)
    await _defer(app, report, PRUNE, PRUNE_LOCK, 0)
    return report
