"""`xmargin worker` and `xmargin dispatch`: the two commands of the work queue.

A worker opens the services once (config, database, one adapter per chain: what a job
needs), opens the App on the same database and runs procrastinate's worker until SIGTERM or
SIGINT: the first signal stops fetching jobs and lets the running ones finish (up to
`[service] shutdown_grace_seconds`), a second one cancels them. Each worker also runs the
periodic dispatcher and reaper (`tasks`); the database keeps one defer per tick among all
workers. Workers never delete finished jobs (`delete_jobs="never"`): see `tasks` (#1495).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

import psycopg
from procrastinate.exceptions import ConnectorException
from psycopg_pool import PoolTimeout

from aggregator.bootstrap import open_services
from aggregator.config import LoadedConfig
from aggregator.work.app import build_app
from aggregator.work.dispatch import DispatchReport, dispatch_round
from aggregator.work.solana_watch import solana_watchers
from aggregator.work.tasks import SERVICES

log = logging.getLogger("xmargin.work")


def worker_name() -> str:
    return f"xmargin-{socket.gethostname()}-{os.getpid()}"


async def run_worker(config: LoadedConfig, concurrency: int) -> None:
    """Run jobs until SIGTERM/SIGINT. When the queue's database goes away (a restart, a
    failover, the network), procrastinate's worker stops with a connector error; the worker
    then says so, waits (1 s, doubling up to `RECONNECT_MAX_SECONDS`) and starts again on a
    new connection pool, so jobs deferred while or after it was down are run without a
    restart of the process. A signal during the wait stops it.

    May raise: XmarginError (database unreachable or not migrated at start-up).
    """
    async with open_services(config) as services:
        delay = 1.0
        while True:
            app = build_app(services.database.url, config, max_connections=concurrency + 4)
            try:
                async with app.open_async(), solana_watchers(app, services.database, config):
                    await app.run_worker_async(
                        name=worker_name(),
                        concurrency=concurrency,
                        additional_context={SERVICES: services},
                        update_heartbeat_interval=config.work.heartbeat_seconds,
                        stalled_worker_timeout=config.work.stalled_seconds,
                        shutdown_graceful_timeout=config.service.shutdown_grace_seconds,
                        delete_jobs="never",
                        install_signal_handlers=True,
                    )
                return  # stopped by a signal
            except QUEUE_UNREACHABLE as exc:
                log.warning(
                    "queue database unreachable (%s: %s): reconnecting in %.0f s",
                    type(exc).__name__,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else "no detail",
                    delay,
                )
            if await _stopped_within(delay):
                log.info("worker stopped while waiting for the queue database")
                return
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)


RECONNECT_MAX_SECONDS = 30.0
QUEUE_UNREACHABLE = (ConnectorException, psycopg.OperationalError, PoolTimeout, OSError)


async def _stopped_within(seconds: float) -> bool:
    """Wait `seconds`; True when SIGTERM or SIGINT came meanwhile."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
        return True
    except TimeoutError:
        return False
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


async def run_dispatch(config: LoadedConfig) -> DispatchReport:
    """Defer one round and report what was deferred and what was still queued.

    May raise: XmarginError (database unreachable or not migrated).
    """
    async with open_services(config, with_adapters=False) as services:
        app = build_app(services.database.url, config, max_connections=2)
        async with app.open_async():
            return await dispatch_round(app, config, services.database)
