"""The Solana watcher on real parts: the localnet's PubSub websocket over LiteSVM (real SPL
transfers), the real database and the procrastinate queue. A transfer between two linked
wallets defers poll jobs for those wallets' shards only; a chain without a websocket runs on
the sweeper alone; a dropped socket is reconnected, subscribed again and swept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from procrastinate import App

from aggregator.config import LoadedConfig, load_config
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.work.app import build_app
from aggregator.work.solana_watch import SolanaWatcher, WatchStatus, solana_watchers
from chains.solana.localnet import LocalSolana, keypair_from_seed
from chains.solana.localnet.demo import DEMO_SOLANA, seed_demo_world
from tests.queue_jobs import empty_queue

REPO = Path(__file__).resolve().parents[3]
CHAIN = "devnet_solana"
ALICE = keypair_from_seed("xmargin-demo:alice")  # DEMO_SOLANA.alice
BOB = keypair_from_seed("xmargin-demo:bob")
CAROL = keypair_from_seed("watch-test:carol")
USDC = DEMO_SOLANA.usdc_mint


@pytest.fixture(scope="module")
def chain() -> Iterator[LocalSolana]:
    with LocalSolana(pubsub_port=0) as local:
        seed_demo_world(local)
        local.mint_to(CAROL.pubkey(), USDC, 100 * 10**6)
        local.finalize()
        yield local


def _config(tmp_path: Path, rpc_url: str, ws_url: str | None) -> LoadedConfig:
    devnet = (REPO / "config" / "devnet.toml").read_text()
    rpc_line = 'rpc_urls = ["http://127.0.0.1:18899"]'
    assert rpc_line in devnet
    line = f'rpc_urls = ["{rpc_url}"]' + (f'\nws_url = "{ws_url}"' if ws_url else "")
    path = tmp_path / "devnet.toml"
    path.write_text(
        devnet.replace(
            'extends = "default.toml"', f'extends = "{REPO / "config" / "default.toml"}"'
        ).replace(rpc_line, line)
    )
    return load_config(path)


@pytest_asyncio.fixture(loop_scope="session")
async def queue(db: Database, database_url: str) -> AsyncIterator[App]:
    app = build_app(database_url, load_config(REPO / "config" / "devnet.toml"), max_connections=3)
    async with app.open_async():
        await empty_queue(app)
        yield app


async def _link(db: Database, wallets: dict[str, str]) -> dict[str, int]:
    """name → user id, each user with one wallet on the chain."""
    users = {}
    async with db.session() as session:
        for name, wallet in wallets.items():
            users[name] = await add_user(session, name)
            await link_wallet(session, users[name], CHAIN, wallet)
    return users


async def _until(watcher: SolanaWatcher, predicate: Callable[[WatchStatus], bool]) -> None:
    """Wait for the watcher's status to satisfy `predicate` (a safety bound, not a timing)."""
    async with asyncio.timeout(60):
        while True:
            watcher.changed.clear()
            if predicate(watcher.status):
                return
            await watcher.changed.wait()


async def _poll_jobs(app: App) -> list[dict[str, Any]]:
    rows = await app.connector.execute_query_all_async(
        "SELECT task_name, args, queueing_lock, status FROM procrastinate_jobs ORDER BY id"
    )
    return [dict(row) for row in rows]


POLL_SHARD = "xmargin.poll_shard"


def _shards_of_jobs(jobs: list[dict[str, Any]]) -> tuple[set[int], int]:
    """The shard indexes of the chain's poll_shard jobs, and their (one) shard count; a shard
    holds the users with `user_id % count == index` (migration 0009)."""
    polls = [j for j in jobs if j["task_name"] == POLL_SHARD and j["args"]["chain"] == CHAIN]
    counts = {int(job["args"]["count"]) for job in polls}
    assert len(counts) == 1, polls
    return {int(job["args"]["index"]) for job in polls}, counts.pop()


async def _watching(watcher: SolanaWatcher) -> asyncio.Task[None]:
    task = asyncio.create_task(watcher.run())
    await _until(watcher, lambda s: s.state == "watching")
    return task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("owner_filters", [True, False], ids=["owner-filters", "per-account"])
async def test_a_transfer_between_linked_wallets_defers_only_their_shards(
    chain: LocalSolana, db: Database, queue: App, tmp_path: Path, owner_filters: bool
) -> None:
    config = _config(tmp_path, chain.url, chain.ws_url)
    users = await _link(
        db, {"alice": DEMO_SOLANA.alice, "bob": DEMO_SOLANA.bob, "carol": str(CAROL.pubkey())}
    )
    watcher = SolanaWatcher(
        queue, db, config, CHAIN, min_backoff_seconds=0.05, owner_filters=owner_filters
    )
    task = await _watching(watcher)
    assert chain.pubsub is not None
    kinds = chain.pubsub.active_subscriptions()
    # owner filters: one per wallet and token program (SPL Token, Token-2022); per account:
    # none, the ATAs are subscribed one by one instead.
    assert kinds.get("program", 0) == (3 * 2 if owner_filters else 0)
    try:
        assert await _poll_jobs(queue) == []
        chain.transfer_tokens(ALICE, BOB.pubkey(), USDC, 5 * 10**6)
        chain.finalize()
        await _until(watcher, lambda s: s.notifications >= 1)
    finally:
        await _stop(task)
    assert watcher.status.touched == [{DEMO_SOLANA.alice, DEMO_SOLANA.bob}]
    jobs = await _poll_jobs(queue)
    assert jobs and all(job["status"] == "todo" for job in jobs)
    indexes, count = _shards_of_jobs(jobs)
    shards = {name: user % count for name, user in users.items()}
    assert shards["carol"] not in (shards["alice"], shards["bob"])  # the test's premise
    assert indexes == {shards["alice"], shards["bob"]}


async def test_a_chain_without_a_websocket_is_left_to_the_sweeper(
    chain: LocalSolana, db: Database, queue: App, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await _link(db, {"alice": DEMO_SOLANA.alice})
    no_key = SolanaWatcher(queue, db, _config(tmp_path, chain.url, None), CHAIN)
    await no_key.run()  # returns: nothing to watch
    assert no_key.status.state == "sweeper only"
    assert no_key.status.last_error == "no ws_url configured"

    with LocalSolana() as plain:  # HTTP only: nothing listens for websockets
        refused_url = plain.url.replace("http://", "ws://")
    refused = SolanaWatcher(
        queue,
        db,
        _config(tmp_path, chain.url, refused_url),
        CHAIN,
        min_backoff_seconds=0.05,
        max_backoff_seconds=0.1,
    )
    task = asyncio.create_task(refused.run())
    await _until(refused, lambda s: s.state == "sweeper only" and s.attempts >= 3)
    assert "no websocket at" in (refused.status.last_error or "")
    said = [r for r in caplog.records if "sweeper only" in r.getMessage()]
    assert len(said) == 2  # once per watcher: the one without ws_url, the refused one
    assert not task.done()  # still alive, retrying quietly
    await _stop(task)
    assert refused.status.connects == 0
    assert await _poll_jobs(queue) == []


async def test_a_dropped_socket_reconnects_resubscribes_and_sweeps(
    chain: LocalSolana, db: Database, queue: App, tmp_path: Path
) -> None:
    config = _config(tmp_path, chain.url, chain.ws_url)
    users = await _link(
        db, {"alice": DEMO_SOLANA.alice, "bob": DEMO_SOLANA.bob, "carol": str(CAROL.pubkey())}
    )
    watcher = SolanaWatcher(queue, db, config, CHAIN, min_backoff_seconds=0.05)
    task = await _watching(watcher)
    assert chain.pubsub is not None
    subscribed = chain.pubsub.active_subscriptions()
    try:
        assert chain.pubsub.drop_connections() == 1
        await _until(watcher, lambda s: s.connects == 2 and s.catch_up_sweeps == 1)
        # The old subscriptions died with their socket; the same set is open again.
        assert chain.pubsub.active_subscriptions() == subscribed
        indexes, count = _shards_of_jobs(await _poll_jobs(queue))
        assert indexes == {user % count for user in users.values()}
        # Notifications flow again on the new socket.
        chain.transfer_tokens(BOB, CAROL.pubkey(), USDC, 1 * 10**6)
        chain.finalize()
        await _until(watcher, lambda s: s.notifications >= 1)
    finally:
        await _stop(task)
    assert watcher.status.touched == [{DEMO_SOLANA.bob, str(CAROL.pubkey())}]


async def test_one_process_watches_a_chain_the_others_stand_by(
    chain: LocalSolana, db: Database, queue: App, tmp_path: Path
) -> None:
    config = _config(tmp_path, chain.url, chain.ws_url)
    await _link(db, {"alice": DEMO_SOLANA.alice})
    async with solana_watchers(queue, db, config) as (first,):
        await _until(first, lambda s: s.state == "watching")
        second = SolanaWatcher(queue, db, config, CHAIN, standby_seconds=0.05)
        task = asyncio.create_task(second.run())
        await _until(second, lambda s: s.state == "standby")
        await _stop(task)
    assert first.status.state == "stopped" and second.status.connects == 0
