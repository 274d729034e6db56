"""Sharded publish passes on a real Postgres: what is stored, what is rewritten, what is served.

Observations are recorded as a poll records them (`record_snapshot`), then published under a
config of two EVM chains, with 4 shards.
"""

from __future__ import annotations

import asyncio
import os
import signal
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from aggregator.config import LoadedConfig, load_config
from aggregator.publish import publish, workers
from aggregator.publish.documents import published_status
from aggregator.publish.inputs import observed_prices
from aggregator.publish.market import chain_reads
from aggregator.publish.portfolios import ObservedLine, build_portfolios
from aggregator.publish.render import status_document
from aggregator.publish.value import value_portfolio
from aggregator.publish.write import shard_lock
from aggregator.risk.output import portfolio_to_document, result_to_json
from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet, wallets_of_user
from aggregator.store.database import Database
from aggregator.store.locks import try_advisory_lock
from aggregator.store.observed.observation_reads import latest_observations
from aggregator.store.observed.observations import ChainObservations, record_snapshot
from aggregator.store.observed.pruning import prune_observations
from aggregator.store.published.status_reads import get_status
from chains.base import (
    Address,
    ChainSnapshot,
    Position,
    PriceObservation,
    ReadPoint,
    TokenBalance,
)
from tests.e2e.conftest import write_config

USERS = 12
NOW = datetime.now(UTC).replace(microsecond=0)


def _account(user: int, chain: str) -> Address:
    return Address(f"0x{user:020x}{ord(chain):020x}")


def _config(tmp_path: Path, **service: int) -> LoadedConfig:
    return load_config(
        write_config(
            tmp_path,
            {"a": ["http://127.0.0.1:9"], "b": ["http://127.0.0.1:9"]},
            service={"publish_shards": 4, **service},
        )
    )


def _snapshot(
    chain: str, height: int, *, eth_price: str = "3000", usdc_of: dict[int, int] | None = None
) -> ChainSnapshot:
    usdc_of = usdc_of or {}
    balances = []
    positions = []
    for user in range(1, USERS + 1):
        account = _account(user, chain)
        balances.append(TokenBalance(account, "ETH", 10**18 * user, 18))
        balances.append(TokenBalance(account, "USDC", usdc_of.get(user, 10**6 * 100), 6))
        if chain == "a":
            positions.append(
                Position(account, "aave_v3:devnet", "USDC", "borrow", -(10**6) * 900 * user, 6)
            )
    prices = ()
    if chain == "a":
        publish_time = int(NOW.timestamp()) - 5
        prices = tuple(
            PriceObservation(asset, "chainlink", Decimal(price), Decimal(0), publish_time, True)
            for asset, price in (("ETH", eth_price), ("WETH", eth_price), ("USDC", "1"))
        )
    return ChainSnapshot(
        chain=chain,
        caip2=f"eip155:{31337 if chain == 'a' else 31338}",
        read_point=ReadPoint(
            height=height,
            block_hash=f"0x{height:060x}{ord(chain):04x}",
            timestamp=int(NOW.timestamp()) - 5,
            finality="latest",
        ),
        balances=tuple(balances),
        positions=tuple(positions),
        prices=prices,
        issues=(),
        request_count=1,
        endpoint="http://127.0.0.1:9",
    )


async def _world(db: Database) -> dict[str, int]:
    owners: dict[str, int] = {}
    async with db.session() as session:
        for user in range(1, USERS + 1):
            user_id = await add_user(session, f"user-{user}")
            for chain in ("a", "b"):
                await link_wallet(session, user_id, chain, _account(user, chain))
                owners[_account(user, chain)] = user_id
    return owners


async def _record(db: Database, owners: dict[str, int], height: int, **kwargs: object) -> None:
    for chain in ("a", "b"):
        snap = _snapshot(chain, height, **kwargs)  # type: ignore[arg-type]
        await record_snapshot(db, snap, owners, NOW - timedelta(seconds=4), 10)


async def _seqs(db: Database) -> dict[int, int]:
    async with db.session() as session:
        rows = await session.execute(select(m.MarginStatus.user_id, m.MarginStatus.seq))
        return dict(rows.all())


async def test_a_second_pass_with_nothing_new_writes_nothing(db: Database, tmp_path: Path) -> None:
    config = _config(tmp_path)
    owners = await _world(db)
    await _record(db, owners, 100)
    first = await publish(db, config, as_of=NOW)
    assert (first.users, first.written, first.changed) == (USERS, USERS, USERS)
    assert len(first.shards) == 4 and not first.skipped_shards
    # Every user in exactly one shard: user_id % 4.
    assert sum(shard.users for shard in first.shards) == USERS
    before = await _seqs(db)

    # The same observations a few seconds later: data age moves the buffers a hair only.
    second = await publish(db, config, as_of=NOW + timedelta(seconds=3))
    assert (second.users, second.written, second.changed) == (USERS, 0, 0)
    assert await _seqs(db) == before

    # New blocks with the same balances: nothing to say either; the rows keep their heads.
    await _record(db, owners, 101)
    third = await publish(db, config, as_of=NOW + timedelta(seconds=6))
    assert third.written == 0


async def test_a_balance_change_rewrites_that_user_only(db: Database, tmp_path: Path) -> None:
    config = _config(tmp_path)
    owners = await _world(db)
    await _record(db, owners, 100)
    await publish(db, config, as_of=NOW)
    before = await _seqs(db)
    user_id = owners[_account(3, "a")]

    await _record(db, owners, 101, usdc_of={3: 10**6 * 5000})
    report = await publish(db, config, as_of=NOW + timedelta(seconds=1))
    assert report.written == 1
    after = await _seqs(db)
    assert after[user_id] == before[user_id] + 1
    assert {u: s for u, s in after.items() if u != user_id} == {
        u: s for u, s in before.items() if u != user_id
    }
    async with db.session() as session:
        record = await published_status(session, config, user_id)
    assert record is not None
    usdc = [
        (h["chain"], h["amount"])
        for h in record.document["holdings"]
        if h["asset"] == "USDC" and h["kind"] == "balance"
    ]
    assert sorted(usdc) == [("eip155:31337", "5000"), ("eip155:31338", "5000")]


async def test_price_moves_rewrite_only_past_the_republish_threshold(
    db: Database, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    assert config.risk.republish_relative_change == Decimal("0.001")
    owners = await _world(db)
    await _record(db, owners, 100, eth_price="3000")
    await publish(db, config, as_of=NOW)

    await _record(db, owners, 101, eth_price="3000.3")  # +0.01%: under 0.1% everywhere
    small = await publish(db, config, as_of=NOW + timedelta(seconds=1))
    assert small.written == 0

    await _record(db, owners, 102, eth_price="3090")  # +3%: every user holds ETH
    large = await publish(db, config, as_of=NOW + timedelta(seconds=2))
    assert large.written == USERS
    async with db.session() as session:
        record = await get_status(session, owners[_account(1, "a")])
    assert record is not None and record.inputs["heads"] is not None
    assert record.document["as_of"].startswith((NOW + timedelta(seconds=2)).strftime("%Y-%m-%d"))


async def test_a_shard_another_process_holds_is_skipped_then_published(
    db: Database, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    owners = await _world(db)
    await _record(db, owners, 100)
    other = Database(db.url)
    try:
        async with other.session() as holder:
            assert await try_advisory_lock(holder, shard_lock(1, 4))
            report = await publish(db, config, as_of=NOW)
            assert report.skipped_shards == 1
            skipped = [shard for shard in report.shards if shard.skipped]
            assert [shard.index for shard in skipped] == [1]
            published = set(await _seqs(db))
            assert published == {u for u in set(owners.values()) if u % 4 != 1}
        # The lock is released with that transaction: the next pass publishes shard 1 too.
        again = await publish(db, config, as_of=NOW + timedelta(seconds=1))
        assert again.skipped_shards == 0
        assert set(await _seqs(db)) == set(owners.values())
    finally:
        await other.dispose()


async def _eager_document(
    db: Database, config: LoadedConfig, user_id: int, as_of: datetime
) -> tuple[dict[str, object], dict[str, object]]:
    """The document the unsharded pass used to store, computed from scratch."""
    async with db.session() as session:
        observations = await latest_observations(session)
        wallets = await wallets_of_user(session, user_id)
    lines = [
        line for obs in observations.values() for line in _lines(obs) if line.user_id == user_id
    ]
    chains = [read.observed() for read in chain_reads(observations).values()]
    prices = await observed_prices(db, config, observations)
    batch = build_portfolios(
        config, as_of, {user_id: [w.chain for w in wallets]}, chains, lines, prices
    )
    portfolio = batch.portfolios[user_id]
    risk = result_to_json(value_portfolio(portfolio, {}))
    name = f"user-{user_id}"
    document = status_document(
        config,
        user_id,
        name,
        [(w.chain, w.address) for w in wallets],
        chain_reads(observations),
        risk,
        lines,
        as_of,
    )
    # This world holds no venue accounts: the unified view alone can bind.
    document.update(venues=[], binding=None, binding_reason="unreachable")
    if risk["liquidation_shock"] is not None:
        document["binding"] = {
            "view": "unified",
            "venue": None,
            "chain": None,
            "account": None,
            "subaccount": None,
            "status": risk["status"],
            "liquidation_shock": risk["liquidation_shock"],
        }
        document["binding_reason"] = None
    return document, portfolio_to_document(portfolio)


def _lines(obs: ChainObservations) -> list[ObservedLine]:
    """A chain's stored lines, as the unsharded pass read them (balances, then positions)."""
    balances = [
        ObservedLine(
            o.user_id,
            obs.chain,
            o.balance.account,
            o.balance.asset,
            "wallet",
            "balance",
            o.balance.amount_raw,
            o.balance.decimals,
        )
        for o in obs.balances
    ]
    positions = [
        ObservedLine(
            o.user_id,
            obs.chain,
            o.position.account,
            o.position.asset,
            o.position.venue,
            o.position.kind,
            o.position.amount_raw,
            o.position.decimals,
            o.position.entry_price,
            o.position.market,
        )
        for o in obs.positions
    ]
    return balances + positions


async def test_the_document_rendered_on_read_is_the_full_document(
    db: Database, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    owners = await _world(db)
    await _record(db, owners, 100)
    await publish(db, config, as_of=NOW)
    user_id = owners[_account(5, "b")]
    async with db.session() as session:
        stored = await get_status(session, user_id)
        served = await published_status(session, config, user_id)
    assert stored is not None and served is not None
    # Stored: the headline and references only.
    assert "lines" not in stored.document and "liquidation_prices" not in stored.document
    assert set(stored.inputs) == {"market", "heads", "wallets", "digest"}
    assert stored.document["venues"] == []
    # Served: every key of the full document, equal to the one computed from scratch.
    document, portfolio = await _eager_document(db, config, user_id, NOW)
    assert served.document == document
    assert served.inputs["portfolio"] == portfolio
    for key in ("status", "health_factor", "equity", "weighted_collateral", "requirement"):
        assert stored.document[key] == served.document[key]
    assert served.document["liquidation_prices"]["ETH"] is not None


async def test_worker_processes_publish_what_the_calling_process_would(
    db: Database, tmp_path: Path
) -> None:
    owners = await _world(db)
    await _record(db, owners, 100)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    in_process = _config(tmp_path / "one")
    workers = _config(tmp_path / "two", publish_workers=2)
    report = await publish(db, workers, as_of=NOW)
    assert report.users == USERS and report.written == USERS and not report.skipped_shards
    async with db.session() as session:
        by_workers = {u: await get_status(session, u) for u in set(owners.values())}
        await session.execute(text("DELETE FROM margin_status_history"))
        await session.execute(text("DELETE FROM margin_status"))
    await publish(db, in_process, as_of=NOW)
    async with db.session() as session:
        for user_id, record in by_workers.items():
            again = await get_status(session, user_id)
            assert record is not None and again is not None
            assert (record.status, record.health_factor, record.equity_usd) == (
                again.status,
                again.health_factor,
                again.equity_usd,
            )
            assert record.document == again.document


async def test_pruning_keeps_the_heads_a_status_is_rendered_from(
    db: Database, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    owners = await _world(db)
    await _record(db, owners, 100)
    await publish(db, config, as_of=NOW)
    for height in range(101, 106):  # same balances: the statuses keep referring to head 100
        await _record(db, owners, height)
        assert (await publish(db, config, as_of=NOW)).written == 0
    async with db.session() as session:
        result = await prune_observations(session, keep_heads_per_chain=1)
    assert result.heads == 2 * 4  # heads 101..104 of both chains; 100 is in use, 105 latest
    user_id = owners[_account(2, "a")]
    async with db.session() as session:
        heads = await session.scalar(select(func.count()).select_from(m.ChainHead))
        record = await published_status(session, config, user_id)
    assert heads == 4
    assert record is not None and len(record.document["holdings"]) == 5


async def test_an_unchanged_status_is_rewritten_once_it_is_older_than_the_refresh(
    db: Database, tmp_path: Path
) -> None:
    config = _config(tmp_path, status_refresh_seconds=10)
    owners = await _world(db)
    await _record(db, owners, 100)
    await publish(db, config, as_of=NOW)
    assert (await publish(db, config, as_of=NOW + timedelta(seconds=5))).written == 0
    refreshed = await publish(db, config, as_of=NOW + timedelta(seconds=10))
    assert (refreshed.written, refreshed.changed) == (USERS, 0)  # a new version, no history
    async with db.session() as session:
        record = await get_status(session, owners[_account(1, "a")])
    assert record is not None and record.as_of == NOW + timedelta(seconds=10)


async def test_a_worker_process_killed_mid_pass_loses_only_its_shard_and_the_next_pass_recovers(
    db: Database, tmp_path: Path
) -> None:
    config = _config(tmp_path, publish_workers=2)
    owners = await _world(db)
    await _record(db, owners, 100)
    pool = workers.shard_pool(2)
    list(pool.map(abs, range(4)))  # both processes up
    victim = next(iter(pool._processes))  # a live worker process of the pool

    blocker = Database(db.url)
    try:
        async with blocker.session() as session:
            # Hold shard 0's rows: its worker waits inside its transaction, and is killed there.
            await session.execute(text("LOCK TABLE margin_status_history IN EXCLUSIVE MODE"))
            running = asyncio.create_task(publish(db, config, as_of=NOW))
            await asyncio.sleep(3)
            os.kill(victim, signal.SIGKILL)
            with pytest.raises(BrokenProcessPool):
                await running
    finally:
        await blocker.dispose()
    assert workers._POOL is None  # dropped: the next pass starts new processes
    # Every shard wrote whole or nothing: each published user has both its rows.
    async with db.session() as session:
        latest = set(await session.scalars(select(m.MarginStatus.user_id)))
        history = set(await session.scalars(select(m.MarginStatusHistory.user_id)))
    assert latest == history
    again = await publish(db, config, as_of=NOW + timedelta(seconds=1))
    assert not again.skipped_shards
    assert set(await _seqs(db)) == set(owners.values())
