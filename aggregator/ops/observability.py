"""What the daemon's jobs record after their work: metrics the stores know, and structured
log lines (with `chain`, `block`, `endpoint`, `user_id` fields for `--log-format json`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aggregator.ops.metrics import DaemonMetrics, endpoint_labels
from aggregator.polling import ChainPollResult
from aggregator.store.database import Database
from aggregator.store.observed.freshness import chain_freshness
from aggregator.store.published.attention import status_counts
from chains.base import ChainAdapter

if TYPE_CHECKING:
    from aggregator.bootstrap import CycleReport

log = logging.getLogger("xmargin.poll")


async def after_poll(
    database: Database,
    metrics: DaemonMetrics,
    adapter: ChainAdapter,
    result: ChainPollResult,
    started_at: float,
) -> None:
    """Log the poll (and each endpoint that failed during it), and refresh the chain's head
    time for `xmargin_head_age_seconds`.

    May raise: DatabaseUnavailable.
    """
    fields = {"chain": result.chain, "block": result.height, "duration_ms": result.duration_ms}
    if result.ok:
        log.info(result.describe(), extra=fields)
    else:
        log.warning(result.describe(), extra=fields)
    health = adapter.endpoint_health
    labels = endpoint_labels(list(health))
    for url, record in health.items():
        if record.last_failure_at is not None and record.last_failure_at >= started_at:
            log.warning(
                "poll %s: endpoint %s failed: %s",
                result.chain,
                labels[url],
                record.last_error,
                extra={"chain": result.chain, "endpoint": labels[url]},
            )
    if result.skipped:
        return
    async with database.session() as session:
        freshness = await chain_freshness(session)
    head = freshness.get(result.chain)
    if head is not None and head.block_time is not None:
        metrics.record_head_time(result.chain, head.block_time.timestamp())


async def after_publish(database: Database, metrics: DaemonMetrics) -> None:
    """Refresh users per status from the latest statuses. May raise: DatabaseUnavailable."""
    async with database.session() as session:
        counts, stale = await status_counts(session)
    metrics.record_status_counts(counts, stale)


def log_cycle(report: CycleReport) -> None:
    """`xmargin cycle --log-format json`: the cycle's report as log records, one per poll,
    one for the publish, one for the alerts."""
    cycle_log = logging.getLogger("xmargin.cycle")
    for poll in report.polls:
        fields = {"chain": poll.chain, "block": poll.height, "duration_ms": poll.duration_ms}
        level = logging.INFO if poll.ok else logging.WARNING
        cycle_log.log(level, poll.describe(), extra=fields)
    publish = report.publish
    cycle_log.info(publish.describe(), extra={"users": publish.users, "changed": publish.changed})
    if report.alerts is not None:
        cycle_log.info(
            report.alerts.describe(),
            extra={
                "delivered": report.alerts.delivered,
                "failed": report.alerts.failed,
                "pending": report.alerts.pending,
            },
        )
