"""The world `bench/api_load.py` serves: its own database, an anvil chain, one user polled and
published by the real code, and many users whose statuses are published directly.

Nothing here measures anything; every piece is an async context manager that removes what it
made (the database, the embedded Postgres, the anvil process) on the way out, even on failure.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from aggregator.bootstrap import open_services
from aggregator.config import LoadedConfig, load_config
from aggregator.demo import demo_evm_wallet
from aggregator.polling import poll_chain
from aggregator.publish import publish
from aggregator.publish.documents import published_status
from aggregator.specs import chain_spec
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import (
    DATABASE_URL_ENV,
    Database,
    libpq_url,
    normalize_database_url,
)
from aggregator.store.migrate import upgrade_to_head
from aggregator.store.published.statuses import StatusRecord, publish_statuses
from chains.evm.devnet import DEMO_ADDRESSES, AnvilNode, deploy_demo_world, mine, seed_wallet
from chains.registry import build_adapter

REPO = Path(__file__).resolve().parents[1]
ETH = 10**18
USDC = 10**6
USER = "bench-alice"
WALLETS = (demo_evm_wallet("bench-alice-1"), demo_evm_wallet("bench-alice-2"))


# --- the database ---------------------------------------------------------------------------


@asynccontextmanager
async def bench_database() -> AsyncIterator[tuple[str, str]]:
    """A fresh migrated database and where it lives: on the server of `XMARGIN_DATABASE_URL`
    when set (created for the bench and dropped at the end), else in an embedded Postgres
    (pgserver) in a temporary directory, deleted at the end. Yields (psycopg URL, label)."""
    configured = os.environ.get(DATABASE_URL_ENV, "").strip()
    embedded: Any = None
    parent: Path | None = None
    if configured:
        admin_url = libpq_url(normalize_database_url(configured))
        label = "XMARGIN_DATABASE_URL server"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pgserver warns when XDG_RUNTIME_DIR is unset
            import pgserver
        parent = Path(tempfile.mkdtemp(prefix="xmargin-bench-pg-"))
        embedded = pgserver.get_server(parent / "pgdata", cleanup_mode="delete")
        admin_url = libpq_url(normalize_database_url(embedded.get_uri()))
        label = "embedded pgserver"
    name = f"xmargin_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    created = False
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created = True
        url = (
            make_url(normalize_database_url(admin_url))
            .set(database=name)
            .render_as_string(hide_password=False)
        )
        upgrade_to_head(url)
        yield url, label
    finally:
        if created:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if embedded is not None:
            embedded.cleanup()
        if parent is not None:
            shutil.rmtree(parent, ignore_errors=True)


# --- the config -----------------------------------------------------------------------------


def write_config(directory: Path, rpc_url: str) -> Path:
    """One EVM chain (`local`, the anvil) with the demo contracts, as the e2e tests write it
    (tests/e2e/conftest.py `write_config`, one chain, statuses fresh for an hour)."""
    lines = [
        f'extends = "{REPO / "config" / "default.toml"}"',
        "",
        "[chains.local]",
        'family = "evm"',
        "chain_id = 31337",
        f"rpc_urls = {json.dumps([rpc_url])}",
        'finality = "latest-2"',
        "finality_seconds = 24",
        "liquidation_latency_seconds = 60",
        "max_staleness_seconds = 3600",
        "timeout_seconds = 2",
        "retries = 0",
        "",
        "[[chains.local.aave_pools]]",
        'name = "devnet"',
        f'pool = "{DEMO_ADDRESSES["pool"]}"',
        f'data_provider = "{DEMO_ADDRESSES["pool"]}"',
        f'oracle = "{DEMO_ADDRESSES["pool"]}"',
        'revision = "v3-core"',
        "",
    ]
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
            'volatility = "0.02"' if stable else 'volatility = "0.8"',
            'init_weight = "0.8"',
            'maint_weight = "0.9"',
            'init_liability_weight = "1.2"',
            'maint_liability_weight = "1.1"',
            f'price = {{ kind = "chainlink", chain = "local", address = "{feed}" }}',
            f'deployments.local = {{ address = "{address}", decimals = {decimals} }}',
            "",
        ]
    if "[auth.require]" in (REPO / "config" / "default.toml").read_text(encoding="utf-8"):
        # The bench reads as an anonymous front end: statuses and streams open to it.
        lines += ["[auth.require]", 'user = "open"', 'reference = "open"', 'ops = "open"', ""]
    path = directory / "xmargin.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --- the world ------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    database_url: str
    database_label: str
    config_path: Path
    config: LoadedConfig
    user: str  # the user polled and published by the real code
    user_id: int
    record: StatusRecord  # its published status, read back


@asynccontextmanager
async def build_world(directory: Path) -> AsyncIterator[World]:
    """Database, anvil, config, one user with two wallets (collateral and a loan), one real
    poll of the chain and one real publish. The anvil is stopped once the status is published
    (the API reads the store only); the database lives until the block ends."""
    async with bench_database() as (url, label):
        async with AnvilNode(chain_id=31337) as node:
            deployment = await deploy_demo_world(node.url)
            config_path = write_config(directory, node.url)
            config = load_config(config_path)
            await seed_wallet(
                node.url,
                deployment,
                WALLETS[0],
                native_wei=5 * ETH,
                tokens={"USDC": 20_000 * USDC},
                aave_supply={"WETH": 4 * ETH},
                aave_borrow={"USDC": 3_000 * USDC},
            )
            await seed_wallet(
                node.url, deployment, WALLETS[1], native_wei=2 * ETH, tokens={"USDC": 500 * USDC}
            )
            async with open_services(config, with_adapters=False, database_url=url) as services:
                async with services.database.session() as session:
                    user_id = await add_user(session, USER)
                    for wallet in WALLETS:
                        await link_wallet(session, user_id, "local", wallet)
            await mine(node.url, 3)
            database = Database(url)
            adapter = build_adapter(chain_spec(config, "local"))
            try:
                result = await poll_chain(database, adapter, dict.fromkeys(WALLETS, user_id))
                if not result.ok:
                    raise RuntimeError(f"poll failed: {result.describe()}")
                await publish(database, config)
                async with database.session() as session:
                    record = await published_status(session, config, user_id)
            finally:
                await adapter.aclose()
                await database.dispose()
        if record is None:
            raise RuntimeError(f"publish wrote no status for {USER}")
        yield World(url, label, config_path, config, USER, user_id, record)


# --- many users with statuses ---------------------------------------------------------------


def _scale(value: Any, factor: Decimal) -> Any:
    return None if value is None else str(Decimal(str(value)) * factor)


def copied_record(
    template: StatusRecord, user_id: int, name: str, equity_factor: Decimal
) -> StatusRecord:
    """`template` as the status of another user: the user fields of the document changed, and
    equity (and free collateral) times `equity_factor` in the columns and the document."""
    document = copy.deepcopy(template.document)
    for key in ("user", "user_name", "name"):
        if isinstance(document.get(key), str):
            document[key] = name
    if "user_id" in document:
        document["user_id"] = user_id
    if isinstance(document.get("user"), dict):
        document["user"] = {**document["user"], "id": user_id, "name": name}
    for key in ("equity", "free_collateral"):
        if key in document:
            document[key] = _scale(document[key], equity_factor)
    return replace(
        template,
        user_id=user_id,
        equity_usd=template.equity_usd * equity_factor,
        free_collateral_usd=template.free_collateral_usd * equity_factor,
        document=document,
        inputs=copy.deepcopy(template.inputs),
        recorded_at=None,
        seq=0,
        history_id=None,
    )


async def add_published_users(
    database_url: str, template: StatusRecord, count: int, prefix: str = "bench-stream-"
) -> dict[str, int]:
    """`count` users (no wallets), each with a published status copied from `template`, in
    one publish pass. Returns name → id."""
    database = Database(database_url)
    try:
        async with database.session() as session:
            users = {}
            for index in range(count):
                name = f"{prefix}{index:05d}"
                users[name] = await add_user(session, name)
        async with database.session() as session:
            await publish_statuses(
                session,
                [copied_record(template, uid, name, Decimal(1)) for name, uid in users.items()],
            )
        return users
    finally:
        await database.dispose()
