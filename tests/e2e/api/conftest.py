"""The API as a front end meets it: `xmargin api` in its own process on a free port, over a
real Postgres database (this run's own), with statuses published from a real anvil chain by the
real poll and publish code.

The world is built once for the package: two users (alice healthy, bob near liquidation) with
wallets on one anvil chain. Tests that change it (a price move and a new publish) go through
`ApiWorld.republish`, and read what they assert back from the same API.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from aggregator.bootstrap import open_services
from aggregator.config import LoadedConfig, load_config
from aggregator.demo import demo_evm_wallet
from aggregator.polling import poll_chain
from aggregator.publish import publish
from aggregator.specs import chain_spec
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.store.migrate import upgrade_to_head
from chains.evm.devnet import (
    AnvilNode,
    EvmDeployment,
    deploy_demo_world,
    mine,
    seed_wallet,
    set_price,
)
from chains.registry import build_adapter
from tests.e2e.conftest import REPO, write_config

ETH = 10**18
USDC = 10**6
ALICE = demo_evm_wallet("alice")
BOB = demo_evm_wallet("bob")
CHAIN = "eip155:31337"
# The stream tests need small figures to see a drop and a heartbeat within seconds.
API_SETTINGS: dict[str, Any] = {
    "stream_queue_size": 4,
    "stream_heartbeat_seconds": 1,
    "max_batch": 100,
    "history_max_limit": 50,
    "cors_origins": ["http://front.example"],
}


@dataclass
class ApiWorld:
    base_url: str
    database_url: str
    config_path: Path
    config: LoadedConfig
    node: AnvilNode
    deployment: EvmDeployment
    users: dict[str, int]
    eth_price: list[int] = field(default_factory=lambda: [3_000_00000000])

    async def republish(self, eth_price: int | None = None) -> None:
        """Move ETH/USD to `eth_price` (8 decimals; by default 1% up from where it is), mine,
        poll the chain and publish: the real path a status change takes. (A pass rewrites a
        status only when something moved: without a move there would be no new version.)"""
        if eth_price is None:
            eth_price = self.eth_price[0] * 101 // 100
        self.eth_price[0] = eth_price
        await set_price(self.node.url, self.deployment, "ETH", eth_price)
        await mine(self.node.url, 3)
        await poll_and_publish(self.database_url, self.config, self.users)


async def poll_and_publish(database_url: str, config: LoadedConfig, users: dict[str, int]) -> None:
    database = Database(database_url)
    adapter = build_adapter(chain_spec(config, "local"))
    try:
        owners = {ALICE: users["alice"], BOB: users["bob"]}
        result = await poll_chain(database, adapter, owners)
        assert result.ok, result.describe()
        await publish(database, config)
    finally:
        await adapter.aclose()
        await database.dispose()


def start_api(
    config_path: Path, database_url: str, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """`xmargin api --port 0` in its own process; its process and base URL."""
    env = {**os.environ, "XMARGIN_DATABASE_URL": database_url, **(extra_env or {})}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aggregator.cli",
            "api",
            "--port",
            "0",
            "--config",
            str(config_path),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for _ in range(200):
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        found = re.search(r"xmargin api at (http://\S+)", line)
        if found:
            return process, found.group(1)
    process.kill()
    raise RuntimeError(f"xmargin api did not start: {process.stdout.read()}")


def stop_api(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="package")
def api_database_url(_test_server: Any) -> str:
    """A database of its own for the API world (the `db` fixture empties the shared one)."""
    url: str = _test_server.create_database("xmargin_api")
    upgrade_to_head(url)
    return url


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def world(
    api_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiWorld]:
    async with AnvilNode(chain_id=31337) as node:
        deployment = await deploy_demo_world(node.url)
        directory = tmp_path_factory.mktemp("api-world")
        config_path = write_config(
            directory, {"local": [node.url]}, max_staleness_seconds=3600, api=API_SETTINGS
        )
        config = load_config(config_path)
        await seed_wallet(
            node.url,
            deployment,
            ALICE,
            native_wei=5 * ETH,
            tokens={"USDC": 20_000 * USDC},
            aave_supply={"WETH": 4 * ETH},
            aave_borrow={"USDC": 3_000 * USDC},
        )
        await seed_wallet(
            node.url,
            deployment,
            BOB,
            aave_supply={"WETH": 10 * ETH},
            aave_borrow={"USDC": 24_000 * USDC},
        )
        async with open_services(config, with_adapters=False, database_url=api_database_url) as s:
            async with s.database.session() as session:
                users = {
                    "alice": await add_user(session, "alice"),
                    "bob": await add_user(session, "bob"),
                    "carol": await add_user(session, "carol"),  # no wallet: never published
                }
                await link_wallet(session, users["alice"], "local", ALICE)
                await link_wallet(session, users["bob"], "local", BOB)
        await mine(node.url, 3)
        await poll_and_publish(api_database_url, config, users)
        process, base_url = await asyncio.to_thread(start_api, config_path, api_database_url)
        try:
            yield ApiWorld(
                base_url=base_url,
                database_url=api_database_url,
                config_path=config_path,
                config=config,
                node=node,
                deployment=deployment,
                users=users,
            )
        finally:
            await asyncio.to_thread(stop_api, process)


@pytest_asyncio.fixture(loop_scope="session")
async def client(world: ApiWorld) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=world.base_url, timeout=20) as http:
        yield http


@pytest.fixture(scope="package")
def api_url(world: ApiWorld) -> Iterator[str]:
    yield world.base_url


# --- trust (issue 8) ---------------------------------------------------------------------------
# A world of its own where reads need a key or a session, with a session key, a signing key and
# an attestation verifier: tests/e2e/api/trust_conftest.py builds it, for test_api_trust_*.py.


@pytest.fixture(scope="package")
def trust_database_url(_test_server: Any) -> str:
    url: str = _test_server.create_database("xmargin_trust")
    upgrade_to_head(url)
    return url


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def trust_world(
    trust_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    from tests.e2e.api.trust_conftest import build_trust_world

    directory = tmp_path_factory.mktemp("trust-world")
    async with build_trust_world(trust_database_url, directory) as built:
        yield built
