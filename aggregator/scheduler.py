"""`xmargin run`: the daemon. One poll job per chain at its own interval, one publish job.

Jobs never overlap themselves (max_instances=1), missed runs coalesce into one, and SIGTERM or
SIGINT stop the scheduler after the running jobs finish. Advisory locks in the store keep a cron
`xmargin cycle` and this daemon (or two daemons) from doing the same work twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from aggregator.alerts.deliver import Deliverer
from aggregator.bootstrap import Services, open_services, running_api
from aggregator.config import LoadedConfig
from aggregator.errors import XmarginError
from aggregator.ops.metrics import DaemonMetrics
from aggregator.ops.observability import after_poll, after_publish
from aggregator.ops.signals import stop_event
from aggregator.polling import poll_chain, wallet_owners
from aggregator.publish import publish
from aggregator.store.observed.pruning import prune_observations
from aggregator.store.partitions import Retention

log = logging.getLogger("xmargin.scheduler")

JobFunction = Callable[..., Awaitable[None]]


class InFlight:
    """The job runs under way, so that a stop can let them finish: APScheduler's own
    `shutdown(wait=True)` cancels running asyncio jobs instead of waiting for them."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def track(self, job: JobFunction) -> JobFunction:
        async def run(*args: Any) -> None:
            task = asyncio.current_task()
            if task is not None:
                self.tasks.add(task)
            try:
                await job(*args)
            finally:
                if task is not None:
                    self.tasks.discard(task)

        run.__name__ = getattr(job, "__name__", "job")
        return run

    async def wait(self, grace_seconds: float) -> int:
        """Wait up to `grace_seconds` for the running jobs; how many did not finish."""
        if not self.tasks:
            return 0
        _, pending = await asyncio.wait(set(self.tasks), timeout=grace_seconds)
        return len(pending)


async def _poll_job(services: Services, chain: str, metrics: DaemonMetrics) -> None:
    owners = await wallet_owners(services.database)
    started_at = time.time()
    result = await poll_chain(services.database, services.adapters[chain], owners.get(chain, {}))
    metrics.record_poll(result)
    await after_poll(services.database, metrics, services.adapters[chain], result, started_at)


async def _publish_job(services: Services, metrics: DaemonMetrics) -> None:
    started = time.perf_counter()
    report = await publish(services.database, services.config)
    metrics.record_publish(report, time.perf_counter() - started)
    log.info(report.describe())
    await after_publish(services.database, metrics)
    async with services.database.session() as session:
        service = services.config.service
        await prune_observations(
            session, service.keep_heads_per_chain, retention=Retention.of(service)
        )


async def _deliver_job(deliverer: Deliverer) -> None:
    report = await deliverer.deliver_due()
    if report.outcomes:
        log.info(report.describe())


def build_scheduler(
    services: Services,
    metrics: DaemonMetrics | None = None,
    deliverer: Deliverer | None = None,
    in_flight: InFlight | None = None,
) -> AsyncIOScheduler:
    """The daemon's jobs, not yet started; they record into `metrics` and their runs are
    tracked by `in_flight`. With a `deliverer`, an alert delivery job runs every
    `alerts.deliver_interval_seconds`."""
    metrics = metrics or DaemonMetrics()
    track = (in_flight or InFlight()).track
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
            track(_poll_job),
            "interval",
            seconds=chain.poll_interval_seconds,
            args=(services, key, metrics),
            id=f"poll:{key}",
            next_run_time=datetime.now(UTC),  # first poll at start, then every interval
        )
    scheduler.add_job(
        track(_publish_job),
        "interval",
        seconds=config.service.publish_interval_seconds,
        args=(services, metrics),
        id="publish",
        next_run_time=datetime.now(UTC),
    )
    if deliverer is not None:
        scheduler.add_job(
            track(_deliver_job),
            "interval",
            seconds=config.alerts.deliver_interval_seconds,
            args=(deliverer,),
            id="deliver_alerts",
            next_run_time=datetime.now(UTC),
        )
    return scheduler


async def run_forever(
    config: LoadedConfig,
    *,
    api: bool = True,
    host: str | None = None,
    port: int | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Run until SIGTERM/SIGINT, serving the HTTP API beside the jobs unless `api` is False
    (and the daemon's metrics on `metrics_host:metrics_port` when given, API or not); the
    running jobs finish before the process exits.

    May raise: XmarginError (database, or the API's port).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = stop_event()
    metrics = DaemonMetrics()
    async with open_services(config) as services, AsyncExitStack() as stack:
        adapters = services.adapters
        metrics.watch_endpoints(lambda: {key: a.endpoint_health for key, a in adapters.items()})
        if metrics_port is not None:
            stack.callback(_serve_metrics(metrics, metrics_host, metrics_port))
        deliverer = None
        if config.alerts.webhooks:
            deliverer = Deliverer(services.database, config.alerts, observer=metrics)
            stack.push_async_callback(deliverer.aclose)
        if api:
            server = await stack.enter_async_context(
                running_api(services, host, port, extra_registries=[metrics.registry])
            )
            log.info("xmargin api at %s", server.url)
        in_flight = InFlight()
        scheduler = build_scheduler(services, metrics, deliverer, in_flight)
        scheduler.start()
        log.info("xmargin daemon started: %d jobs", len(scheduler.get_jobs()))
        await stop.wait()
        log.info("stopping: waiting for running jobs")
        scheduler.pause()  # nothing new starts; what runs finishes (a pass lands whole)
        unfinished = await in_flight.wait(config.service.shutdown_grace_seconds)
        if unfinished:
            log.warning("stopping: %d jobs still running after the grace period", unfinished)
        scheduler.shutdown(wait=False)


def _serve_metrics(metrics: DaemonMetrics, host: str, port: int) -> Callable[[], None]:
    """Serve `metrics` at http://host:port/metrics from a thread; the function that stops it.

    May raise: XmarginError (the port cannot be bound).
    """
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        reason = exc.strerror or exc
        raise XmarginError(f"metrics: cannot listen on {host}:{port}: {reason}") from exc
    log.info("xmargin metrics at http://%s:%d/metrics", host, server.server_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
