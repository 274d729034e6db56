"""`xmargin worker` and `xmargin dispatch`: the two commands of the work queue.

A worker opens the services once (config, database, one adapter per chain: what a job
needs), opens the App on the same database and runs procrastinate's worker until SIGTERM or
SIGINT: the first signal stops fetching jobs and lets the running ones finish (up to
`[service] shutdown_grace_seconds`), a second one cancels them. Each worker also runs the
periodic dispatcher and reaper (`tasks`); the database keeps one defer per tick among all
workers. Workers never delete finished jobs (`delete_jobs="never"`): see `tasks` (#1495).
"""

from __future__ import annotations

import os
import socket

from aggregator.bootstrap import open_services
from aggregator.config import LoadedConfig
from aggregator.work.app import build_app
from aggregator.work.dispatch import DispatchReport, dispatch_round
from aggregator.work.solana_watch import solana_watchers
from aggregator.work.tasks import SERVICES


def worker_name() -> str:
    return f"xmargin-{socket.gethostname()}-{os.getpid()}"


async def run_worker(config: LoadedConfig, concurrency: int) -> None:
    """Run jobs until SIGTERM/SIGINT.

    May raise: XmarginError (database unreachable or not migrated).
    """
    async with open_services(config) as services:
        app = build_app(services.database.url, config, max_connections=concurrency + 4)
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


async def run_dispatch(config: LoadedConfig) -> DispatchReport:
    """Defer one round and report what was deferred and what was still queued.

    May raise: XmarginError (database unreachable or not migrated).
    """
    async with open_services(config, with_adapters=False) as services:
        app = build_app(services.database.url, config, max_connections=2)
        async with app.open_async():
            return await dispatch_round(app, config, services.database)
