"""The queue's tasks: thin wrappers over the functions `xmargin cycle` and `xmargin run` call.

Each task finds the worker's `Services` (config, database, adapters; built once per worker by
`worker.run_worker`) in its job context and calls the service function: `poll_chain`,
`poll_shard` (one (chain, shard)), `follow_chain` (an EVM head follower), `sweep_chain` (the
sweeper), `passes.start_pass` / `run_shard` (around `publish_shard`), `Deliverer.deliver_due`,
`prune_observations`, `publish.reprice` (deferred after a whole-chain or shard poll of a price
chain). Every task logs one line saying what it did.

Retries (procrastinate #1543): no task has a retry strategy. A failed job ends `failed`, which
frees its lock at once; the next round defers the same work again. A retry would put the job
back to `todo`, and when a newer job with the same queueing lock is already queued that
update violates the queueing-lock index inside the worker, leaving the job `doing` and its
lock held: the queue for that lock wedges. Only the reaper moves a job back to `todo`, and it
handles that collision (`reaper`).

Shard polls retry their own way: a shard poll whose chain read failed (the job itself succeeds:
the failure is recorded in `poll_runs`) defers a new job for the retry, a few seconds later,
within `POLL_SHARD_RETRIES`; a new `todo` job beside the running `doing` one is what the
queueing lock allows, and when one is already queued it does the work.

Periodic tasks (procrastinate #1495): a restarted worker skips a tick whose periodic-defer row
is already there, and a row whose job is gone (deleted) still blocks its tick. Our two
periodic tasks (`dispatch`, `reap`) are built so that a lost or doubled tick costs nothing:
their cron is short (seconds), their work is idempotent (queueing locks, the shard fence),
they carry no lock or queueing lock (so the periodic defer itself can never be refused), and
`xmargin dispatch` from cron defers rounds without the periodic machinery at all. Workers
never delete finished jobs (prune deletes them only after `[work] keep_finished_jobs_hours`),
and the reaper deletes our periodic-defer rows left without a job.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from procrastinate import App, JobContext
from procrastinate.exceptions import AlreadyEnqueued

from aggregator.bootstrap import Services
from aggregator.config import LoadedConfig
from aggregator.polling import poll_chain, wallet_owners
from aggregator.polling.shards import poll_shard as poll_shard_of
from aggregator.publish.reprice import reprice as reprice_exposed
from aggregator.store.observed.pruning import prune_observations
from aggregator.store.partitions import Retention
from aggregator.work.dispatch import dispatch_round
from aggregator.work.fence import prune_shard_marks
from aggregator.work.follow import follow_chain
from aggregator.work.locks import (
    DELIVER_ALERTS,
    DISPATCH,
    FOLLOW,
    POLL,
    POLL_SHARD,
    PRUNE,
    PUBLISH,
    PUBLISH_SHARD,
    REAP,
    REPRICE,
    REPRICE_LOCK,
    SWEEP,
)
from aggregator.work.passes import run_shard, start_pass
from aggregator.work.reaper import reap_stalled
from aggregator.work.refresh import defer_shard_poll
from aggregator.work.sweep import sweep_chain

log = logging.getLogger("xmargin.work")

SERVICES = "services"  # the job context's key for the worker's Services


def services_of(context: JobContext) -> Services:
    services = context.additional_context.get(SERVICES)
    if not isinstance(services, Services):
        raise RuntimeError("xmargin tasks run in `xmargin worker` (no services in the context)")
    return services


def _job_id(context: JobContext) -> int:
    assert context.job.id is not None
    return context.job.id


async def poll(context: JobContext, chain: str) -> None:
    """Poll one chain (`poll_chain`, under its advisory lock as in `run` and `cycle`)."""
    services = services_of(context)
    adapter = services.adapters.get(chain)
    if adapter is None:
        log.warning("poll %s: no such chain in %s: nothing done", chain, services.config.path)
        return
    log.info("poll %s: started (job %d on %s)", chain, _job_id(context), context.worker_name)
    owners = await wallet_owners(services.database)
    result = await poll_chain(services.database, adapter, owners.get(chain, {}))
    log.info("%s (job %d)", result.describe(), _job_id(context))
    if result.ok and not result.skipped and prices_chain(services.config, chain):
        await defer_reprice(context.app)


def prices_chain(config: LoadedConfig, chain: str) -> bool:
    """Whether a poll of `chain` reads a configured asset's price."""
    return any(
        asset.price is not None and asset.price.chain == chain for asset in config.assets.values()
    )


async def defer_reprice(app: App) -> int | None:
    """Defer a repricing (one waits in the queue at a time: a second is refused and the
    waiting one reads the newer prices anyway); its job id, or None when one was queued."""
    try:
        return await app.configure_task(
            REPRICE, lock=REPRICE_LOCK, queueing_lock=REPRICE_LOCK
        ).defer_async()
    except AlreadyEnqueued:
        return None


async def reprice(context: JobContext) -> None:
    """Revalue the users exposed to the prices that moved (`publish.reprice`: stored lines,
    no chain read)."""
    services = services_of(context)
    report = await reprice_exposed(services.database, services.config)
    log.info("%s (job %d)", report.describe(), _job_id(context))


POLL_SHARD_RETRIES = 4  # a failed shard poll is retried 4 times, 5, 10, 20 and 40 s apart
RETRY_FIRST_SECONDS = 5.0


async def retry_shard_poll(app: App, chain: str, index: int, count: int, attempt: int) -> bool:
    """After the failed `attempt` (0 for the first run) of a shard poll: defer the next one,
    `RETRY_FIRST_SECONDS` doubling per attempt, while within `POLL_SHARD_RETRIES`. False when
    the budget is spent (the next round or sweep polls the shard again) or when a poll of the
    shard is already queued (it does the same work)."""
    if attempt >= POLL_SHARD_RETRIES:
        log.warning(
            "poll %s shard %d/%d: failed %d times: left to the next round or sweep",
            chain,
            index,
            count,
            attempt + 1,
        )
        return False
    delay = RETRY_FIRST_SECONDS * 2**attempt
    job_id = await defer_shard_poll(
        app, chain, index, count, attempt=attempt + 1, delay_seconds=delay
    )
    if job_id is not None:
        log.info(
            "poll %s shard %d/%d: retry %d of %d in %.0f s (job %d)",
            chain,
            index,
            count,
            attempt + 1,
            POLL_SHARD_RETRIES,
            delay,
            job_id,
        )
    return job_id is not None


async def poll_shard(
    context: JobContext, chain: str, index: int, count: int, attempt: int = 0
) -> None:
    """Poll one (chain, shard) (`polling.poll_shard`: under the shard's advisory lock, behind
    its cursor fence, so a duplicate run writes nothing); then, like `poll`, defer a
    repricing when the chain prices an asset. A poll that failed (recorded in `poll_runs`,
    the shard's last lines kept) is retried within budget (`retry_shard_poll`) by a new job,
    not by procrastinate's retry (see the module's text)."""
    services = services_of(context)
    adapter = services.adapters.get(chain)
    if adapter is None:
        log.warning("poll %s: no such chain in %s: nothing done", chain, services.config.path)
        return
    log.info(
        "poll %s shard %d/%d: started (job %d on %s)",
        chain,
        index,
        count,
        _job_id(context),
        context.worker_name,
    )
    result = await poll_shard_of(services.database, adapter, chain, index, count)
    log.info("%s (job %d)", result.describe(), _job_id(context))
    # A shard poll reads the chain's prices too (they are chain-wide): in the "shards" and
    # "activity" rounds no whole-chain poll runs, so this is where a price move is noticed.
    wrote = result.ok and not result.skipped and not result.fenced
    if wrote and prices_chain(services.config, chain):
        await defer_reprice(context.app)
    if not result.ok and not result.fenced:
        await retry_shard_poll(context.app, chain, index, count, attempt)


async def sweep(context: JobContext, chain: str) -> None:
    """The sweeper of one chain (`work.sweep`): when its period has passed (claimed here),
    a `poll_shard` of every shard holding one of its wallets."""
    services = services_of(context)
    if services.config.chains.get(chain) is None:
        log.warning("sweep %s: no such chain in %s: nothing done", chain, services.config.path)
        return
    report = await sweep_chain(context.app, services.database, services.config, chain)
    log.info("%s (job %d)", report.describe(), _job_id(context))


async def follow(context: JobContext, chain: str) -> None:
    """One run of an EVM chain's head follower (`work.follow`)."""
    services = services_of(context)
    if services.config.chains.get(chain) is None:
        log.warning("follow %s: no such chain in %s: nothing done", chain, services.config.path)
        return
    report = await follow_chain(context.app, services.database, services.config, chain)
    log.info("%s (job %d)", report.describe(), _job_id(context))


async def publish(context: JobContext) -> None:
    """Start a publish pass: store its market, defer one job per shard."""
    services = services_of(context)
    started = await start_pass(
        context.app, services.database, services.config, f"job:{_job_id(context)}"
    )
    log.info(started.describe())


async def publish_shard(
    context: JobContext,
    pass_key: str,
    index: int,
    count: int,
    market: dict[str, Any],
    orphaned: list[int],
) -> None:
    """Write one shard of a pass, at most once per pass (`fence`)."""
    services = services_of(context)
    outcome = await run_shard(
        services.database, services.config, pass_key, index, count, market, orphaned
    )
    log.info("%s (job %d)", outcome.describe(), _job_id(context))


async def deliver_alerts(context: JobContext) -> None:
    """Post the due alert events once (those that fail wait for a later round)."""
    services = services_of(context)
    if not services.config.alerts.webhooks:
        return
    from aggregator.alerts.deliver import Deliverer

    deliverer = Deliverer(services.database, services.config.alerts)
    try:
        report = await deliverer.deliver_due()
    finally:
        await deliverer.aclose()
    log.info(report.describe())


async def prune(context: JobContext) -> None:
    """Prune old observations (as after a publish in `run`), old shard markers and old
    finished jobs."""
    services = services_of(context)
    work = services.config.work
    async with services.database.session() as session:
        service = services.config.service
        result = await prune_observations(
            session, service.keep_heads_per_chain, retention=Retention.of(service)
        )
        marks = await prune_shard_marks(session, timedelta(hours=work.keep_finished_jobs_hours))
    await context.app.job_manager.delete_old_jobs(
        nb_hours=work.keep_finished_jobs_hours,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )
    log.info("prune: %s; %d shard markers", result, marks)


async def dispatch(context: JobContext, timestamp: int) -> None:
    """The periodic dispatcher: defer one round (a no-op for what is still queued)."""
    services = services_of(context)
    report = await dispatch_round(context.app, services.config, services.database)
    for line in report.lines():
        log.info(line)


async def reap(context: JobContext, timestamp: int) -> None:
    """The periodic reaper: retry the jobs of dead workers."""
    report = await reap_stalled(context.app, services_of(context).config.work.stalled_seconds)
    if report.retried or report.failed or report.errors:
        log.info(report.describe())


def register_tasks(app: App, config: LoadedConfig) -> None:
    """Register the tasks on `app`, and the periodic ones at `[work]`'s crons (when set).

    Locks and queueing locks are given per job when deferred (`dispatch`, `passes`).
    """
    app.task(name=POLL, pass_context=True)(poll)
    app.task(name=POLL_SHARD, pass_context=True)(poll_shard)
    app.task(name=FOLLOW, pass_context=True)(follow)
    app.task(name=SWEEP, pass_context=True)(sweep)
    app.task(name=PUBLISH, pass_context=True)(publish)
    app.task(name=PUBLISH_SHARD, pass_context=True)(publish_shard)
    app.task(name=DELIVER_ALERTS, pass_context=True)(deliver_alerts)
    app.task(name=PRUNE, pass_context=True)(prune)
    app.task(name=REPRICE, pass_context=True)(reprice)
    dispatcher = app.task(name=DISPATCH, pass_context=True)(dispatch)
    reaper = app.task(name=REAP, pass_context=True)(reap)
    if config.work.dispatch_cron:
        app.periodic(cron=config.work.dispatch_cron, periodic_id="round")(dispatcher)
    if config.work.reap_cron:
        app.periodic(cron=config.work.reap_cron, periodic_id="stalled")(reaper)
