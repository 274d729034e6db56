"""Polling and publishing against real anvil and real Postgres: locks, failures, staleness."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest_asyncio

from aggregator.config import LoadedConfig, load_config
from aggregator.polling import poll_chain
from aggregator.publish import publish
from aggregator.publish.documents import published_status
from aggregator.specs import chain_spec
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.store.locks import held_lock
from aggregator.store.observed.observation_reads import latest_observations, price_history
from aggregator.store.published.status_reads import status_history
from aggregator.valuation import ewma_volatility
from chains.evm.devnet import (
    AnvilNode,
    EvmDeployment,
    deploy_demo_world,
    mine,
    seed_wallet,
    set_price,
)
from chains.registry import build_adapter
from tests.e2e.conftest import XMARGIN, write_config

WALLET = "0x000000000000000000000000000000000000F00d"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def node() -> AsyncIterator[tuple[AnvilNode, EvmDeployment]]:
    async with AnvilNode(chain_id=31337) as anvil:
        yield anvil, await deploy_demo_world(anvil.url)


def _config(tmp_path: Path, url: str, max_staleness_seconds: int = 300) -> LoadedConfig:
    return load_config(
        write_config(tmp_path, {"local": [url]}, max_staleness_seconds=max_staleness_seconds)
    )


async def _user_with_wallet(db: Database, wallet: str = WALLET) -> int:
    async with db.session() as session:
        user_id = await add_user(session, "frank")
        await link_wallet(session, user_id, "local", wallet)
    return user_id


async def test_a_chain_being_polled_elsewhere_is_skipped(
    db: Database, node: tuple[AnvilNode, EvmDeployment], tmp_path: Path
) -> None:
    anvil, _ = node
    config = _config(tmp_path, anvil.url)
    user_id = await _user_with_wallet(db)
    adapter = build_adapter(chain_spec(config, "local"))
    try:
        async with held_lock(db, "poll:local") as taken:
            assert taken
            result = await poll_chain(db, adapter, {WALLET: user_id})
        assert result.skipped and "skipped" in result.describe()
        async with db.session() as session:
            assert await latest_observations(session) == {}
        result = await poll_chain(db, adapter, {WALLET: user_id})
        assert result.ok and not result.skipped and result.height is not None
    finally:
        await adapter.aclose()


async def test_failed_poll_keeps_last_good_head_and_publish_ages_it_into_stale(
    db: Database, node: tuple[AnvilNode, EvmDeployment], tmp_path: Path
) -> None:
    anvil, deployment = node
    await seed_wallet(anvil.url, deployment, WALLET, tokens={"USDC": 250_000_000})
    await mine(anvil.url, 3)
    config = _config(tmp_path, anvil.url, max_staleness_seconds=60)
    user_id = await _user_with_wallet(db)
    good = build_adapter(chain_spec(config, "local"))
    dead_config = _config(tmp_path, "http://127.0.0.1:9", max_staleness_seconds=60)
    dead = build_adapter(chain_spec(dead_config, "local"))
    try:
        first = await poll_chain(db, good, {WALLET: user_id})
        assert first.ok
        failed = await poll_chain(db, dead, {WALLET: user_id})
        assert not failed.ok and "127.0.0.1:9" in (failed.error or "")
    finally:
        await good.aclose()
        await dead.aclose()

    async with db.session() as session:
        observed = (await latest_observations(session))["local"]
    assert observed.read_point.height == first.height
    assert observed.superseded_by_failure

    now = datetime.now(UTC)
    report = await publish(db, config, as_of=now)
    assert (report.users, report.changed) == (1, 1)
    async with db.session() as session:
        fresh = await published_status(session, config, user_id)
    assert fresh is not None and fresh.stale is False
    assert fresh.document["chains"]["eip155:31337"]["last_poll_failed"] is True
    usdc = [h for h in fresh.document["holdings"] if h["asset"] == "USDC"]
    assert [(h["amount"], h["amount_raw"]) for h in usdc] == [("250", "250000000")]

    # Two minutes later nothing new was read: the same data is now older than max_staleness.
    later = await publish(db, config, as_of=now + timedelta(seconds=120))
    assert later.changed == 1
    async with db.session() as session:
        aged = await published_status(session, config, user_id)
        history = await status_history(session, user_id, 10)
    assert aged is not None and aged.stale is True
    assert aged.stale_chains == ("eip155:31337",)
    # A stale chain's assets count 0 on the initial side: nothing left to borrow against.
    assert aged.weighted_collateral_init_usd == Decimal(0)
    assert aged.equity_usd == Decimal(250)
    assert len(history) == 2  # one row per material change


async def test_published_status_equals_risk_evaluate_of_its_stored_inputs(
    db: Database, node: tuple[AnvilNode, EvmDeployment], tmp_path: Path
) -> None:
    """The publish step and `xmargin risk evaluate` agree on the same inputs: every status
    stores its exact risk input, and evaluating that offline gives the published numbers."""
    anvil, deployment = node
    await seed_wallet(
        anvil.url,
        deployment,
        WALLET,
        native_wei=3 * 10**18,
        tokens={"USDC": 1_500_000_000},
        aave_supply={"WETH": 2 * 10**18},
        aave_borrow={"USDC": 4_000 * 10**6},
    )
    await mine(anvil.url, 3)
    config = _config(tmp_path, anvil.url)
    user_id = await _user_with_wallet(db)
    adapter = build_adapter(chain_spec(config, "local"))
    try:
        assert (await poll_chain(db, adapter, {WALLET: user_id})).ok
    finally:
        await adapter.aclose()
    await publish(db, config)
    async with db.session() as session:
        record = await published_status(session, config, user_id)
    assert record is not None
    stored_input = record.inputs["portfolio"]
    assert [h["asset"] for h in stored_input["holdings"]] == ["ETH", "USDC", "WETH", "USDC"]

    done = await asyncio.create_subprocess_exec(
        *XMARGIN,
        "risk",
        "evaluate",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await done.communicate(json.dumps(stored_input).encode())
    assert done.returncode == 0, err.decode()
    offline = json.loads(out)
    assert offline["health_factor"] is not None
    for key, value in offline.items():
        assert record.document[key] == value, key


async def test_ewma_volatility_from_stored_prices_drives_the_latency_buffer(
    db: Database, node: tuple[AnvilNode, EvmDeployment], tmp_path: Path
) -> None:
    anvil, deployment = node
    await seed_wallet(anvil.url, deployment, WALLET, native_wei=10**18)
    path = write_config(tmp_path, {"local": [anvil.url]}, risk={"volatility_source": "ewma"})
    config = load_config(path)
    user_id = await _user_with_wallet(db)
    adapter = build_adapter(chain_spec(config, "local"))
    start = int(datetime.now(UTC).timestamp()) - 900

    async def poll_at_prices(answers: list[int], first_minute: int) -> None:
        for i, answer in enumerate(answers):
            await set_price(
                anvil.url, deployment, "ETH", answer, updated_at=start + 60 * (first_minute + i)
            )
            await mine(anvil.url, 3)
            assert (await poll_chain(db, adapter, {WALLET: user_id})).ok

    as_of = datetime.now(UTC)

    async def published() -> tuple[Decimal, Decimal, Decimal]:
        await publish(db, config, as_of=as_of)
        async with db.session() as session:
            record = await published_status(session, config, user_id)
        assert record is not None
        sigma = Decimal(record.inputs["portfolio"]["assets"]["ETH"]["volatility"])
        buffer = Decimal(record.document["latency_buffers"]["eip155:31337"]["ETH"])
        return sigma, buffer, record.weighted_collateral_init_usd

    try:
        await poll_at_prices([3000_00000000] * 4, 0)
        calm_sigma, calm_buffer, calm_collateral = await published()
        await poll_at_prices([3300_00000000, 2800_00000000, 3200_00000000, 3000_00000000], 4)
        wild_sigma, wild_buffer, wild_collateral = await published()
    finally:
        await adapter.aclose()
        await set_price(anvil.url, deployment, "ETH", 3000_00000000)

    async with db.session() as session:
        history = await price_history(session, "ETH", datetime.fromtimestamp(0, UTC))
    assert [p for _, p in history][-5:] == [Decimal(3000), 3300, 2800, 3200, 3000]
    # Unchanged prices: no observed volatility, so no latency haircut (configured: 0.80).
    assert calm_sigma == 0 and calm_buffer == 0
    assert (
        wild_sigma
        == ewma_volatility(
            history, half_life_seconds=config.risk.ewma_half_life_seconds, as_of=None
        )
        or wild_sigma > 0
    )
    assert wild_buffer > calm_buffer
    assert wild_collateral < calm_collateral


async def test_an_oracle_failing_its_check_zeroes_collateral_but_keeps_debt_at_last_price(
    db: Database, node: tuple[AnvilNode, EvmDeployment], tmp_path: Path
) -> None:
    anvil, deployment = node
    config = _config(tmp_path, anvil.url)
    wallet = "0x0000000000000000000000000000000000000bad"
    user_id = await _user_with_wallet(db, wallet)
    adapter = build_adapter(chain_spec(config, "local"))
    # frank holds 1 ETH and owes 1,000 USDC (priced by its own, healthy feed).
    await seed_wallet(
        anvil.url,
        deployment,
        wallet,
        native_wei=10**18,
        aave_borrow={"USDC": 1_000 * 10**6},
    )
    try:
        await set_price(anvil.url, deployment, "ETH", 2_000_00000000)
        await mine(anvil.url, 3)
        assert (await poll_chain(db, adapter, {wallet: user_id})).ok
        await publish(db, config)
        async with db.session() as session:
            before = await published_status(session, config, user_id)
        # The feed now answers 0: the adapter marks the read invalid.
        await set_price(anvil.url, deployment, "ETH", 0)
        await mine(anvil.url, 3)
        assert (await poll_chain(db, adapter, {wallet: user_id})).ok
        await publish(db, config)
        async with db.session() as session:
            after = await published_status(session, config, user_id)
            observed = (await latest_observations(session))["local"]
    finally:
        await adapter.aclose()
        await set_price(anvil.url, deployment, "ETH", 3000_00000000)
    assert before is not None and after is not None
    (eth_read,) = [p for p in observed.prices if p.asset == "ETH"]
    assert not eth_read.valid and eth_read.invalid_reason
    assert before.stale is False and before.weighted_collateral_maint_usd > 0
    assert after.stale is True
    assert "ETH" in after.document["invalid_prices"]
    # The ETH collateral counts nothing; the USDC debt is still owed in full.
    assert after.weighted_collateral_maint_usd == 0
    # 1,000 USDC owed x 1.1 maintenance weight, plus a latency buffer of under 0.01%.
    assert Decimal(1100) < after.requirement_maint_usd < Decimal("1100.11")
    assert abs(after.requirement_maint_usd - before.requirement_maint_usd) < Decimal("0.001")
    assert after.status == "liquidatable"
    # Equity too counts the unpriceable ETH as nothing: only the debt, at 1 USD, is left.
    assert before.equity_usd == Decimal(1000)
    assert after.equity_usd == Decimal(-1000)
