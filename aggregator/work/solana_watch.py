"""The Solana watcher: account-change notifications turned into shard refreshes on the queue.

For a Solana chain whose config gives `ws_url`, one watcher subscribes the linked wallets'
accounts over RPC PubSub (`chains.solana.watch`: which subscriptions and why) at the chain's
commitment, and for each burst of notifications calls `refresh_wallets` for the wallets they
touched: a `poll_shard` job for each touched wallet's (chain, shard), nothing for the others.

One watcher per chain among all workers: it holds the session advisory lock `watch:<chain>`
while it watches; the other workers' watchers wait on it (`standby`) and take over when its
process dies (Postgres frees the lock with the connection).

Faults:
- no `ws_url`: the watcher says "sweeper only" once and returns; the sweeper bounds how long a
  change stays unseen;
- connect refused (the endpoint offers no websocket, or is down): "sweeper only" is said once,
  and the watcher keeps trying, backing off to `max_backoff_seconds`;
- the socket drops: reconnect with exponential backoff, subscribe everything again, and then
  defer a sweep of the chain's shards (`refresh_wallets` of every linked wallet): what changed
  while disconnected was never notified, and that sweep reads it;
- linked wallets change: every `replan_seconds` the watch plan is rebuilt and the difference
  subscribed / cancelled on the open socket;
- `refresh_wallets` fails (database down): logged; the notification is lost to this path and
  the sweeper reads it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from procrastinate import App
from solana.rpc.jsonrpc import SolanaJsonRpcError
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from aggregator.config import LoadedConfig
from aggregator.errors import XmarginError
from aggregator.polling import wallet_owners
from aggregator.specs import chain_spec
from aggregator.store.database import Database
from aggregator.store.locks import held_lock
from aggregator.work.refresh import RefreshReport, refresh_wallets
from chains.base import Address
from chains.solana.spec import SolanaChainSpec
from chains.solana.watch import Watch, WatchConnection, watch_plan

log = logging.getLogger("xmargin.work.solana_watch")

Refresh = Callable[[App, Database, LoadedConfig, str, Sequence[str]], Awaitable[RefreshReport]]

# What a connect attempt raises when nothing answers as a websocket there.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    InvalidHandshake,
    InvalidURI,
    TimeoutError,
)


def watch_lock(chain: str) -> str:
    return f"watch:{chain}"


@dataclass
class WatchStatus:
    """What a watcher is doing, for logs and tests."""

    chain: str
    state: str = "starting"  # sweeper only | standby | watching | reconnecting | stopped
    attempts: int = 0  # connect attempts
    connects: int = 0  # of which succeeded
    subscriptions: int = 0
    notifications: int = 0  # bursts that touched linked wallets
    refreshed_wallets: int = 0
    catch_up_sweeps: int = 0
    last_error: str | None = None
    touched: list[set[str]] = field(default_factory=list)  # per burst, newest last (50 kept)

    def describe(self) -> str:
        return (
            f"solana watch {self.chain}: {self.state}, {self.connects} connects, "
            f"{self.subscriptions} subscriptions, {self.notifications} bursts, "
            f"{self.refreshed_wallets} wallets refreshed, {self.catch_up_sweeps} catch-up sweeps"
        )


class SolanaWatcher:
    """Watches one Solana chain until cancelled (`run`)."""

    def __init__(
        self,
        app: App,
        database: Database,
        config: LoadedConfig,
        chain: str,
        *,
        refresh: Refresh = refresh_wallets,
        min_backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        replan_seconds: float = 60.0,
        standby_seconds: float = 30.0,
        owner_filters: bool | None = None,
    ) -> None:
        self.app = app
        self.database = database
        self.config = config
        self.chain = chain
        self.url = config.chains[chain].ws_url
        self.spec: SolanaChainSpec | None = None
        self.refresh = refresh
        self.min_backoff = min_backoff_seconds
        self.max_backoff = max_backoff_seconds
        self.replan_seconds = replan_seconds
        self.standby_seconds = standby_seconds
        self.owner_filters = owner_filters
        self.status = WatchStatus(chain)
        self._said_sweeper_only = False
        self.changed = asyncio.Event()  # set whenever `status` changes (tests wait on it)

    def _set(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self.status, name, value)
        self.changed.set()

    def _sweeper_only(self, why: str) -> None:
        if not self._said_sweeper_only:
            log.warning("solana watch %s: %s: sweeper only", self.chain, why)
            self._said_sweeper_only = True
        self._set(state="sweeper only", last_error=why)

    async def run(self) -> None:
        """Watch until cancelled; returns at once when the chain has no `ws_url`.

        Never raises but CancelledError: every fault is logged and waited out.
        """
        if self.url is None:
            self._sweeper_only("no ws_url configured")
            return
        spec = chain_spec(self.config, self.chain)
        assert isinstance(spec, SolanaChainSpec)
        self.spec = spec
        try:
            while True:
                try:
                    async with held_lock(self.database, watch_lock(self.chain)) as taken:
                        if taken:
                            await self._watch()
                            continue
                except XmarginError as error:  # the database is down: wait and try again
                    log.warning("solana watch %s: %s", self.chain, error)
                    self._set(last_error=str(error))
                if self.status.state != "sweeper only":
                    self._set(state="standby")
                await asyncio.sleep(self.standby_seconds)
        finally:
            self._set(state="stopped")

    async def _watch(self) -> None:
        """Hold the socket open, reconnecting, for as long as the lock is held (forever)."""
        assert self.url is not None
        delay = self.min_backoff
        while True:
            connects = self.status.connects
            self._set(attempts=self.status.attempts + 1)
            try:
                await self._session(self.url)
            except _UNREACHABLE as error:
                if self.status.connects == 0:
                    self._sweeper_only(f"no websocket at {self.url} ({_name(error)})")
                else:
                    self._dropped(error, delay)
            except (WebSocketException, SolanaJsonRpcError, RuntimeError) as error:
                self._dropped(error, delay)
            if self.status.connects > connects:  # it was up: back off from the start
                delay = self.min_backoff
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    def _dropped(self, error: BaseException, delay: float) -> None:
        log.warning(
            "solana watch %s: socket lost (%s); reconnecting in %.0f s",
            self.chain,
            _name(error),
            delay,
        )
        self._set(state="reconnecting", last_error=_name(error))

    async def _plan(self) -> tuple[list[Watch], list[str]]:
        assert self.spec is not None
        wallets = sorted((await wallet_owners(self.database)).get(self.chain, {}))
        watches = watch_plan(
            self.spec, [Address(w) for w in wallets], owner_filters=self.owner_filters
        )
        return watches, wallets

    async def _session(self, url: str) -> None:
        assert self.spec is not None
        async with WatchConnection(url, self.spec.commitment) as connection:
            watches, wallets = await self._plan()
            await connection.subscribe(watches)
            reconnected = self.status.connects > 0
            self._set(
                state="watching",
                connects=self.status.connects + 1,
                subscriptions=len(connection.watches),
                last_error=None,
            )
            log.info(
                "solana watch %s: watching %d wallets (%d subscriptions) at %s",
                self.chain,
                len(wallets),
                len(connection.watches),
                url,
            )
            if reconnected:
                await self._catch_up(wallets)
            loop = asyncio.get_running_loop()
            replan_at = loop.time() + self.replan_seconds
            while True:
                touched = await connection.touched(max(0.0, replan_at - loop.time()))
                if touched:
                    await self._refresh(sorted(touched))
                if loop.time() >= replan_at:
                    await self._replan(connection)
                    replan_at = loop.time() + self.replan_seconds

    async def _replan(self, connection: WatchConnection) -> None:
        watches, _wallets = await self._plan()
        wanted = set(watches)
        added = await connection.subscribe(watches)
        removed = await connection.unsubscribe(connection.watches - wanted)
        if added or removed:
            log.info(
                "solana watch %s: %d subscriptions added, %d cancelled",
                self.chain,
                added,
                removed,
            )
            self._set(subscriptions=len(connection.watches))

    async def _catch_up(self, wallets: list[str]) -> None:
        """After a reconnect: sweep the chain's shards, for what was missed while away."""
        if not wallets:
            return
        log.info("solana watch %s: reconnected: deferring a sweep of its shards", self.chain)
        if await self._call_refresh(wallets):
            self._set(catch_up_sweeps=self.status.catch_up_sweeps + 1)

    async def _refresh(self, wallets: list[str]) -> None:
        if await self._call_refresh(wallets):
            kept = [*self.status.touched[-49:], set(wallets)]
            self._set(
                notifications=self.status.notifications + 1,
                refreshed_wallets=self.status.refreshed_wallets + len(wallets),
                touched=kept,
            )

    async def _call_refresh(self, wallets: list[str]) -> bool:
        try:
            report = await self.refresh(self.app, self.database, self.config, self.chain, wallets)
        except Exception as error:  # a failed refresh must not stop the watch
            log.warning(
                "solana watch %s: refresh of %d wallets failed (%s); the sweeper will read them",
                self.chain,
                len(wallets),
                _name(error),
            )
            self._set(last_error=_name(error))
            return False
        log.info("solana watch %s: %s", self.chain, report.describe())
        return True


def _name(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def solana_chains(config: LoadedConfig) -> list[str]:
    return [key for key, chain in config.chains.items() if chain.family == "solana"]


@asynccontextmanager
async def solana_watchers(
    app: App, database: Database, config: LoadedConfig
) -> AsyncIterator[list[SolanaWatcher]]:
    """A watcher task per Solana chain for the block (each takes its chain's lock or stands
    by); cancelled on exit."""
    watchers = [SolanaWatcher(app, database, config, chain) for chain in solana_chains(config)]
    tasks = [asyncio.create_task(w.run(), name=f"solana-watch:{w.chain}") for w in watchers]
    try:
        yield watchers
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
