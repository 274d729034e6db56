"""The reaper: jobs of dead workers put back in the queue, without wedging a lock.

A worker killed mid-job (SIGKILL, out of memory, a lost machine) leaves its job `doing`, and
with it the job's `lock`: no other job of that name would ever run. Procrastinate's job
manager lists such jobs (`get_stalled_jobs`: `doing` jobs of workers whose heartbeat is older
than `[work] stalled_seconds`, or of workers already pruned) and `retry_job` puts one back to
`todo`.

The trap (procrastinate #1543, #1446): while the job was stalled its queueing lock was free
(it only covers `todo` jobs), so a later dispatch may have queued a sibling with the same
queueing lock; retrying the stalled job then violates the queueing-lock index, and a sweep
that stops at that error leaves every stalled job, and its lock, stuck. So each job is
handled on its own: retried when it can be; when a sibling is queued, the stalled job is
marked failed instead (that frees its lock, and the sibling does the same work); any other
error is logged and the sweep goes on.

The reaper holds no lock and no queueing lock (#1408: a reaper with a lock, killed, stalls
itself and nothing reaps it), and is never retried: its next tick runs anyway. It also deletes
periodic-defer rows of our periodic tasks that have lost their job (#1495, see `tasks`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from procrastinate import App
from procrastinate.exceptions import ConnectorException, UniqueViolation
from procrastinate.jobs import Status

from aggregator.work.locks import PERIODIC_TASKS, REAP

log = logging.getLogger("xmargin.work")

_ORPHANED_PERIODIC_DEFERS = """
DELETE FROM procrastinate_periodic_defers
WHERE job_id IS NULL AND task_name = ANY(%(task_names)s)
"""


@dataclass
class ReapReport:
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # a sibling was queued: it does the work
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"reap: {len(self.retried)} stalled jobs retried {self.retried}, "
            f"{len(self.failed)} failed (a newer job was queued) {self.failed}"
            + (f", errors: {'; '.join(self.errors)}" if self.errors else "")
        )


async def reap_stalled(app: App, stalled_seconds: float) -> ReapReport:
    """Retry (or, when a newer job holds its queueing lock, fail) every stalled job.

    May raise: ConnectorException (listing the stalled jobs failed: the database is down).
    """
    report = ReapReport()
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_seconds)
    for job in stalled:
        assert job.id is not None
        try:
            if job.task_name == REAP:
                # Never re-run a reaper: the next tick does its work.
                await app.job_manager.finish_job(job, Status.FAILED, delete_job=False)
                report.failed.append(job.id)
                continue
            try:
                await app.job_manager.retry_job(job)
                report.retried.append(job.id)
                log.warning("reap: job %d (%s) of a dead worker retried", job.id, job.task_name)
            except UniqueViolation:
                await app.job_manager.finish_job(job, Status.FAILED, delete_job=False)
                report.failed.append(job.id)
                log.warning(
                    "reap: job %d (%s) of a dead worker failed: a newer job with queueing "
                    "lock %s is queued and does its work",
                    job.id,
                    job.task_name,
                    job.queueing_lock,
                )
        except ConnectorException as exc:  # finished meanwhile, or a passing fault
            report.errors.append(f"job {job.id}: {exc}")
            log.warning("reap: job %d left as it is: %s", job.id, exc)
    await app.connector.execute_query_async(
        _ORPHANED_PERIODIC_DEFERS, task_names=list(PERIODIC_TASKS)
    )
    return report
