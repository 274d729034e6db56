"""End-to-end fixtures: the `xmargin` command run as a user runs it, against a real anvil node
and this test run's own Postgres database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio

from aggregator.store.database import Database, libpq_url, normalize_database_url
from aggregator.store.migrate import upgrade_to_head
from chains.evm.devnet import DEMO_ADDRESSES, AnvilNode, EvmDeployment, deploy_demo_world

REPO = Path(__file__).resolve().parents[2]
XMARGIN = [sys.executable, "-m", "aggregator.cli"]


@dataclass(frozen=True)
class Chain:
    node: AnvilNode
    deployment: EvmDeployment

    @property
    def url(self) -> str:
        return self.node.url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def chain() -> AsyncIterator[Chain]:
    """A fresh anvil (chain id 31337) with Multicall3 and the demo contracts."""
    async with AnvilNode(chain_id=31337) as node:
        yield Chain(node, await deploy_demo_world(node.url))


# `[auth.require]` with every read open: what write_config writes unless told otherwise.
OPEN_READS = {"ops": "open", "reference": "open", "user": "open"}


def write_config(
    directory: Path,
    rpc_urls: dict[str, list[str]],
    *,
    max_staleness_seconds: int = 300,
    chain_ids: dict[str, int] | None = None,
    risk: dict[str, str] | None = None,
    service: dict[str, int] | None = None,
    api: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
) -> Path:
    """A config with one EVM chain per `rpc_urls` key, each carrying the demo contracts;
    `risk`, `service` and `api` override those tables. `auth` overrides `[auth]`, its
    `require` entry `[auth.require]`; without it reads are open (the tests that read
    anonymously were written so), unlike a fresh install."""
    chain_ids = chain_ids or {}
    lines = [f'extends = "{REPO / "config" / "default.toml"}"', ""]
    if risk:
        lines += ["[risk]", *(f"{key} = {json.dumps(value)}" for key, value in risk.items()), ""]
    if service:
        lines += ["[service]", *(f"{key} = {value}" for key, value in service.items()), ""]
    if api:
        lines += ["[api]", *(f"{key} = {json.dumps(value)}" for key, value in api.items()), ""]
    auth = {"require": OPEN_READS} if auth is None else auth
    plain = {key: value for key, value in auth.items() if key != "require"}
    if plain:
        lines += ["[auth]", *(f"{key} = {json.dumps(value)}" for key, value in plain.items()), ""]
    if auth.get("require"):
        require = auth["require"].items()
        lines += ["[auth.require]", *(f"{key} = {json.dumps(value)}" for key, value in require), ""]
    for index, (key, urls) in enumerate(rpc_urls.items()):
        lines += [
            f"[chains.{key}]",
            'family = "evm"',
            f"chain_id = {chain_ids.get(key, 31337 + index)}",
            f"rpc_urls = {json.dumps(urls)}",
            'finality = "latest-2"',
            "finality_seconds = 24",
            "liquidation_latency_seconds = 60",
            f"max_staleness_seconds = {max_staleness_seconds}",
            "timeout_seconds = 2",
            "retries = 0",
            "",
            f"[[chains.{key}.aave_pools]]",
            'name = "devnet"',
            f'pool = "{DEMO_ADDRESSES["pool"]}"',
            f'data_provider = "{DEMO_ADDRESSES["pool"]}"',
            f'oracle = "{DEMO_ADDRESSES["pool"]}"',
            'revision = "v3-core"',
            "",
        ]
    first = next(iter(rpc_urls))
    assets = {
        "ETH": ("ETH", "native", 18, DEMO_ADDRESSES["feed:ETH"], False),
        "WETH": ("ETH", DEMO_ADDRESSES["WETH"], 18, DEMO_ADDRESSES["feed:ETH"], False),
        "USDC": ("USD", DEMO_ADDRESSES["USDC"], 6, DEMO_ADDRESSES["feed:USDC"], True),
    }
    for symbol, (family, address, decimals, feed, stable) in assets.items():
        lines += [
            f"[assets.{symbol}]",
            f'family = "{family}"',
            f"stable = {'true' if stable else 'false'}",
            'volatility = "0.8"' if not stable else 'volatility = "0.02"',
            'init_weight = "0.8"',
            'maint_weight = "0.9"',
            'init_liability_weight = "1.2"',
            'maint_liability_weight = "1.1"',
            f'price = {{ kind = "chainlink", chain = "{first}", address = "{feed}" }}',
        ]
        for key in rpc_urls:
            lines.append(f'deployments.{key} = {{ address = "{address}", decimals = {decimals} }}')
        lines.append("")
    path = directory / "xmargin.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Cli = Callable[..., Result]


@pytest.fixture
def xmargin(database_url: str, db: Database, tmp_path: Path) -> Cli:
    """Run `xmargin ARGS...` in a subprocess on this run's (emptied) database."""
    env = {**os.environ, "XMARGIN_DATABASE_URL": database_url}
    env.pop("XMARGIN_CONFIG", None)

    def run(
        *args: str, config: Path | None = None, extra_env: dict[str, str] | None = None
    ) -> Result:
        argv = [*XMARGIN, *args]
        if config is not None:
            argv += ["--config", str(config)]
        done = subprocess.run(
            argv,
            env={**env, **(extra_env or {})},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


QUEUE_WALLETS = {f"user{i}": f"0x000000000000000000000000000000000000D00{i}" for i in range(1, 5)}


@pytest_asyncio.fixture(loop_scope="session")
async def queue_node() -> AsyncIterator[str]:
    """A fresh anvil with the demo world, each of `QUEUE_WALLETS` holding 10 USDC (the work
    queue's tests)."""
    from chains.evm.devnet import mine, seed_wallet

    async with AnvilNode(chain_id=31337) as anvil:
        deployment = await deploy_demo_world(anvil.url)
        for wallet in QUEUE_WALLETS.values():
            await seed_wallet(anvil.url, deployment, wallet, tokens={"USDC": 10**7})
        await mine(anvil.url, 3)
        yield anvil.url


@pytest.fixture
def own_server() -> Iterator[tuple[object, str]]:
    """An embedded Postgres of this test alone (in a temporary directory, as tests/conftest.py
    starts one; the fault tests stop and restart it), and a migrated database URL on it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgserver warns when XDG_RUNTIME_DIR is unset
        import pgserver

    parent = Path(tempfile.mkdtemp(prefix="xmargin-restart-pg-"))
    server = pgserver.get_server(parent / "pgdata", cleanup_mode="delete")
    try:
        admin = libpq_url(normalize_database_url(server.get_uri()))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "restart_test"')
        url = normalize_database_url(server.get_uri("restart_test"))
        upgrade_to_head(url)
        yield server, url
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)
