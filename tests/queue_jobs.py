"""The work queue in tests: an emptied queue, and a real procrastinate worker run in this
process until no due job is left (a job deferred by a job that ran is run too)."""

from __future__ import annotations

from procrastinate import App

from aggregator.bootstrap import Services
from aggregator.work.tasks import SERVICES

EMPTY_QUEUE = (
    "TRUNCATE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, "
    "procrastinate_workers RESTART IDENTITY CASCADE"
)


async def empty_queue(app: App) -> None:
    """Remove every job, event, periodic defer and worker (the tests share one database)."""
    await app.connector.execute_query_async(EMPTY_QUEUE)


async def run_due_jobs(app: App, services: Services) -> None:
    """Run the due jobs one at a time with `services` in their context, until none is left;
    finished jobs are kept, so a test can read their status."""
    await app.run_worker_async(
        wait=False,
        concurrency=1,
        additional_context={SERVICES: services},
        install_signal_handlers=False,
        delete_jobs="never",
    )
