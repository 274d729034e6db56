"""`xmargin run`: the daemon. One poll job per chain at its own interval, one publish job.

Jobs never overlap themselves (max_instances=1), missed runs coalesce into one, and SIGTERM or
SIGINT stop the scheduler after the running jobs finish. Advisory locks in the store keep a cron
`xmargin cycle` and this daemon (or two daemons) from doing the same work twice.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from aggregator.bootstrap import Services, open_services
from aggregator.config import LoadedConfig
from aggregator.polling import poll_chain, wallet_owners
from aggregator.publish import publish
from aggregator.store.observations import prune_observations

log = logging.getLogger("xmargin.scheduler")


async def _poll_job(services: Services, chain: str) -> None:
    owners = await wallet_owners(services.database)
    result = await poll_chain(services.database, services.adapters[chain], owners.get(chain, {}))
    log.info(result.describe())


async def _publish_job(services: Services) -> None:
    report = await publish(services.database, services.config)
    log.info(report.describe())
    async with services.database.session() as session:
        await prune_observations(session, services.config.service.keep_heads_per_chain)


def build_scheduler(services: Services) -> AsyncIOScheduler:
    """The daemon's jobs, not yet started."""
    config = services.config
    scheduler = AsyncIOScheduler(
        job_defaults={
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": int(config.service.misfire_grace_seconds),
        }
    )
    for key, chain in config.chains.items():
        scheduler.add_job(
            _poll_job,
            "interval",
            seconds=chain.poll_interval_seconds,
            args=(services, key),
            id=f"poll:{key}",
            next_run_time=datetime.now(UTC),  # first poll at start, then every interval
        )
    scheduler.add_job(
        _publish_job,
        "interval",
        seconds=config.service.publish_interval_seconds,
        args=(services,),
        id="publish",
        next_run_time=datetime.now(UTC),
    )
    return scheduler


async def run_forever(config: LoadedConfig) -> None:
    """Run until SIGTERM/SIGINT; the running jobs finish before the process exits."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_services(config) as services:
        scheduler = build_scheduler(services)
        scheduler.start()
        log.info("xmargin daemon started: %d jobs", len(scheduler.get_jobs()))
        await stop.wait()
        log.info("stopping: waiting for running jobs")
        scheduler.shutdown(wait=True)
