"""`xmargin worker` and `xmargin dispatch`: the two commands of the work queue.

A worker opens the services once (config, database, one adapter per chain: what a job
needs), opens the App on the same database and runs procrastinate's worker until SIGTERM or
SIGINT: the first signal stops fetching jobs and lets the running ones finish (up to
`[service] shutdown_grace_seconds`), a second one ends the process at once (the reaper
retries the jobs it held). Any other stop of procrastinate's worker is an outage of the queue's
database: the worker starts again (`run_worker`). Each worker also runs the
periodic dispatcher and reaper (`tasks`); the database keeps one defer per tick among all
workers. Workers never delete finished jobs (`delete_jobs="never"`): see `tasks` (#1495).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time

import psycopg
from procrastinate import App, signals
from procrastinate.exceptions import ConnectorException
from procrastinate.worker import Worker
from psycopg_pool import PoolTimeout

from aggregator.bootstrap import Services, open_services
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
    failover, the network), procrastinate's worker stops: with a connector error raised from
    its job loop, or by itself when one of its side tasks (the LISTEN connection, the
    heartbeat, the periodic deferrer) fails and its monitor stops it, which ends the run
    normally once the server is back. Either way, unless a signal asked for the stop, the
    worker says so, waits (1 s, doubling up to `RECONNECT_MAX_SECONDS`) and starts again on a
    new connection pool, so jobs deferred while or after it was down are run without a
    restart of the process. A signal during the wait stops it.

    May raise: XmarginError (database unreachable or not migrated at start-up).
    """
    async with open_services(config) as services:
        delay = 1.0
        while True:
            app = build_app(services.database.url, config, max_connections=concurrency + 4)
            reason = "the worker stopped by itself (a side task failed)"
            started = time.monotonic()
            try:
                async with app.open_async(), solana_watchers(app, services.database, config):
                    if await _run_until_signalled(app, services, config, concurrency):
                        return
            except QUEUE_UNREACHABLE as exc:
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "no detail"
                reason = f"{type(exc).__name__}: {detail}"
            if time.monotonic() - started > RECONNECT_MAX_SECONDS:
                delay = 1.0  # it ran a good while: a new outage starts the backoff afresh
            log.warning("queue database unreachable (%s): reconnecting in %.0f s", reason, delay)
            if await _stopped_within(delay):
                log.info("worker stopped while waiting for the queue database")
                return
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)


async def _run_until_signalled(
    app: App, services: Services, config: LoadedConfig, concurrency: int
) -> bool:
    """Run procrastinate's worker on `app` until it stops; True when SIGTERM or SIGINT
    stopped it (the first signal stops fetching and lets running jobs finish, a second one
    takes the default action), False when it stopped by itself."""
    app.perform_import_paths()  # type: ignore[no-untyped-call]
    worker = Worker(
        app=app,
        name=worker_name(),
        concurrency=concurrency,
        additional_context={SERVICES: services},
        update_heartbeat_interval=config.work.heartbeat_seconds,
        stalled_worker_timeout=config.work.stalled_seconds,
        shutdown_graceful_timeout=config.service.shutdown_grace_seconds,
        delete_jobs="never",
        install_signal_handlers=False,
    )
    signalled = False

    def stop() -> None:
        nonlocal signalled
        signalled = True
        worker.stop()  # type: ignore[no-untyped-call]

    with signals.on_stop(stop):
        await worker.run()  # type: ignore[no-untyped-call]
    return signalled


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
