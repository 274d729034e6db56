"""The composition root: the one place that builds the database, the adapters and the services.

Nothing is created at import time. Commands call `open_services(config)` (an async context
manager) and pass what it built down explicitly.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aggregator.config import LoadedConfig
from aggregator.errors import XmarginError
from aggregator.polling import ChainPollResult, poll_chains
from aggregator.publish import PublishReport, publish
from aggregator.specs import chain_specs
from aggregator.store.database import (
    DATABASE_URL_ENV,
    Database,
    mask_password,
    resolve_database_url,
)
from aggregator.store.migrate import current_revision, head_revision, upgrade_to_head
from aggregator.store.observed.pruning import prune_observations
from aggregator.store.partitions import Retention
from aggregator.store.reference import sync_reference_data
from aggregator.store.refs import AssetRef, ChainRef, DeploymentRef, PriceSourceRef
from chains.base import ChainAdapter
from chains.registry import build_adapter

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from aggregator.alerts.deliver import DeliveryReport
    from aggregator.api.server import ApiServer


def masked(url: str) -> str:
    return mask_password(url)


async def prepare_database() -> str:
    """Resolve the database and bring it to the newest schema; return its URL.

    May raise: DatabaseUnavailable, DatabaseUrlError.
    """
    url = await asyncio.to_thread(resolve_database_url)
    await asyncio.to_thread(upgrade_to_head, url)
    return url


async def _ready_database() -> str:
    """The database URL, checked to be at the newest schema.

    The embedded database (no XMARGIN_DATABASE_URL) is migrated on the spot so the demo and a
    first `cycle` need no set-up; a configured server must be migrated by `xmargin db upgrade`.
    May raise: XmarginError.
    """
    if not os.environ.get(DATABASE_URL_ENV, "").strip():
        return await prepare_database()
    url = await asyncio.to_thread(resolve_database_url)
    current = await asyncio.to_thread(current_revision, url)
    if current != head_revision():
        raise XmarginError(
            f"database {mask_password(url)} is at schema {current or 'none'}, not "
            f"{head_revision()}: run `xmargin db upgrade`"
        )
    return url


@dataclass
class Services:
    """What a command works with: config, database, one adapter per chain."""

    config: LoadedConfig
    database: Database
    adapters: dict[str, ChainAdapter] = field(default_factory=dict)

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()
        await self.database.dispose()


def reference_data(
    config: LoadedConfig,
) -> tuple[list[ChainRef], list[AssetRef], list[DeploymentRef], list[PriceSourceRef]]:
    """The config's reference tables as the store takes them."""
    chains = [ChainRef(key, c.caip2, c.family) for key, c in config.chains.items()]
    assets = [AssetRef(symbol, a.family, a.stable) for symbol, a in config.assets.items()]
    deployments = [
        DeploymentRef(symbol, chain, d.address, d.decimals, d.token_program)
        for symbol, a in config.assets.items()
        for chain, d in a.deployments.items()
    ]
    prices = [
        PriceSourceRef(symbol, a.price.chain, a.price.kind, a.price.address, a.price.feed_id)
        for symbol, a in config.assets.items()
        if a.price is not None
    ]
    return chains, assets, deployments, prices


@asynccontextmanager
async def open_services(
    config: LoadedConfig, *, with_adapters: bool = True, database_url: str | None = None
) -> AsyncIterator[Services]:
    """Build the services for `config`; reference data is synced from it on the way in.

    May raise: XmarginError (database unreachable or not migrated).
    """
    url = database_url or await _ready_database()
    database = Database(url)
    services = Services(config=config, database=database)
    try:
        async with database.session() as session:
            await sync_reference_data(session, *reference_data(config))
        if with_adapters:
            services.adapters = {
                key: build_adapter(spec) for key, spec in chain_specs(config).items()
            }
        yield services
    finally:
        await services.aclose()


@dataclass(frozen=True)
class CycleReport:
    polls: list[ChainPollResult]
    publish: PublishReport
    alerts: DeliveryReport | None = None  # None when no webhook is configured

    @property
    def all_ok(self) -> bool:
        return all(p.ok for p in self.polls)

    def lines(self) -> list[str]:
        alerts = [] if self.alerts is None else [self.alerts.describe()]
        return [p.describe() for p in self.polls] + [self.publish.describe(), *alerts]


async def cycle_once(services: Services) -> CycleReport:
    """Poll every chain once (concurrently), publish every user's status, prune old reads,
    then post the due alert events once (those that fail wait for the next run)."""
    polls = await poll_chains(services.database, services.adapters)
    report = await publish(services.database, services.config)
    async with services.database.session() as session:
        service = services.config.service
        await prune_observations(
            session, service.keep_heads_per_chain, retention=Retention.of(service)
        )
    alerts = None
    if services.config.alerts.webhooks:
        from aggregator.alerts.deliver import Deliverer

        deliverer = Deliverer(services.database, services.config.alerts)
        try:
            alerts = await deliverer.deliver_due()
        finally:
            await deliverer.aclose()
    return CycleReport(polls=polls, publish=report, alerts=alerts)


async def run_cycle(config: LoadedConfig) -> CycleReport:
    """`xmargin cycle`: open the services, one cycle, close."""
    async with open_services(config) as services:
        return await cycle_once(services)


@asynccontextmanager
async def running_api(
    services: Services,
    host: str | None = None,
    port: int | None = None,
    extra_registries: list[CollectorRegistry] | None = None,
) -> AsyncIterator[ApiServer]:
    """Serve the HTTP API over `services` (host and port default to `[api]` in the config)
    as a task of the running loop, until the block ends.

    May raise: XmarginError (the port cannot be bound, or the server did not start).
    """
    from aggregator.api.app import create_app
    from aggregator.api.context import build_context
    from aggregator.api.server import ApiServer, bind_socket

    host = host or services.config.api.host
    port = services.config.api.port if port is None else port
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise XmarginError(f"api: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    app = create_app(build_context(services.config, services.database, extra_registries))
    server = ApiServer(app, sock)
    task = asyncio.create_task(server.serve(), name="xmargin-api")
    try:
        # uvicorn has no started event to wait on
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if task.done():
            task.result()
            raise XmarginError(f"api: the server on {server.url} stopped at start-up")
        yield server
    finally:
        server.stop()
        await asyncio.gather(task, return_exceptions=True)
        sock.close()


async def serve_api(config: LoadedConfig, host: str | None, port: int | None) -> None:
    """`xmargin api`: serve the HTTP API alone (no polling) until SIGTERM/SIGINT.

    May raise: XmarginError.
    """
    import logging

    from aggregator.ops.signals import stop_event

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = stop_event()
    async with open_services(config, with_adapters=False) as services:
        async with running_api(services, host, port) as server:
            print(f"xmargin api at {server.url} (docs at {server.url}/docs)", flush=True)
            await stop.wait()
