"""`xmargin cycle` then `xmargin status --json`, as an operator or cron drives them."""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import text

from aggregator.store.database import Database
from chains.evm.devnet import mine, seed_wallet
from tests.adapter_contract.garbage_server import GarbageServer
from tests.e2e.conftest import XMARGIN, Chain, Cli, write_config

ETH = 10**18
USDC = 10**6
ALICE = "0x00000000000000000000000000000000a11ce000"
BOB = "0x00000000000000000000000000000000000b0b00"


def _floats(value: Any) -> list[Any]:
    """Every float anywhere in a JSON value (there must be none)."""
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return []


def _holding(doc: dict[str, Any], asset: str, venue: str) -> dict[str, Any]:
    found = [h for h in doc["holdings"] if h["asset"] == asset and h["venue"] == venue]
    assert len(found) == 1, (asset, venue, doc["holdings"])
    return found[0]


async def test_cycle_then_status_reports_exact_holdings_and_margin(
    xmargin: Cli, chain: Chain, tmp_path: Path
) -> None:
    await seed_wallet(
        chain.url,
        chain.deployment,
        to_checksum_address(ALICE),
        native_wei=2 * ETH,
        tokens={"USDC": 1_234_567_891},
        aave_supply={"WETH": ETH},
        aave_borrow={"USDC": 500 * USDC},
    )
    await seed_wallet(chain.url, chain.deployment, to_checksum_address(BOB), tokens={"USDC": 7})
    await mine(chain.url, 3)  # past the latest-2 read point
    config = write_config(tmp_path, {"local": [chain.url]})

    assert xmargin("users", "add", "alice", config=config).code == 0
    assert xmargin("users", "add", "bob", config=config).code == 0
    linked = xmargin("wallets", "link", "alice", "local", ALICE, config=config)
    assert linked.code == 0, linked.stderr
    assert f"eip155:31337:{to_checksum_address(ALICE)}" in linked.stdout
    assert xmargin("wallets", "link", "bob", "local", BOB, config=config).code == 0

    cycle = xmargin("cycle", config=config)
    assert cycle.code == 0, cycle.stderr + cycle.stdout
    assert "poll local: block" in cycle.stdout
    assert "publish: 2 users" in cycle.stdout

    status = xmargin("status", "alice", "--json", config=config)
    assert status.code == 0, status.stderr
    doc = status.json()
    assert _floats(doc) == []
    assert doc["user"] == "alice"
    assert doc["accounts"] == [f"eip155:31337:{to_checksum_address(ALICE)}"]
    usdc = _holding(doc, "USDC", "wallet")
    assert (usdc["amount"], usdc["amount_raw"], usdc["decimals"]) == (
        "1234.567891",
        "1234567891",
        6,
    )
    assert usdc["account"] == f"eip155:31337:{to_checksum_address(ALICE)}"
    eth = _holding(doc, "ETH", "wallet")
    assert (Decimal(eth["amount"]), eth["amount_raw"], eth["decimals"]) == (2, str(2 * ETH), 18)
    deposit = _holding(doc, "WETH", "aave_v3:devnet")
    assert (deposit["kind"], Decimal(deposit["amount"])) == ("deposit", 1)
    debt = _holding(doc, "USDC", "aave_v3:devnet")
    assert (debt["kind"], Decimal(debt["amount"])) == ("borrow", -500)
    # Oracle answers 3000 USD/ETH and 1 USD/USDC with no confidence interval, so equity is exact:
    # 2 ETH + 1 WETH at 3000, plus 1234.567891 USDC, minus 500 USDC owed.
    assert Decimal(doc["equity"]) == Decimal("9734.567891")
    assert doc["chains"]["eip155:31337"]["height"] is not None
    assert doc["health_factor"] is not None and Decimal(doc["health_factor"]) > 1
    assert doc["status"] in {"healthy", "warning"}
    assert doc["stale"] is False

    # The exact risk input the status was valued from reproduces it offline, number for number.
    risk_input = xmargin("status", "alice", "--input", config=config)
    assert risk_input.code == 0, risk_input.stderr
    (tmp_path / "alice.json").write_text(risk_input.stdout)
    offline = xmargin("risk", "evaluate", str(tmp_path / "alice.json"))
    assert offline.code == 0, offline.stderr
    again = offline.json()
    for key in ("status", "equity", "health_factor", "requirement", "liquidation_prices", "lines"):
        assert again[key] == doc[key], key

    bob = xmargin("status", "bob", "--json", config=config).json()
    assert bob["health_factor"] is None  # owes nothing
    assert _holding(bob, "USDC", "wallet")["amount"] == "0.000007"
    assert bob["status"] == "healthy"


async def test_failed_chain_keeps_last_good_data_and_marks_it_stale(
    xmargin: Cli, chain: Chain, tmp_path: Path
) -> None:
    carol = "0x0000000000000000000000000000000000ca7015"
    await seed_wallet(chain.url, chain.deployment, carol, tokens={"USDC": 42 * USDC})
    await mine(chain.url, 3)
    good = write_config(tmp_path, {"local": [chain.url]}, max_staleness_seconds=1)
    assert xmargin("users", "add", "carol", config=good).code == 0
    assert xmargin("wallets", "link", "carol", "local", carol, config=good).code == 0
    assert xmargin("cycle", config=good).code == 0

    # The same chain, now only reachable through a dead endpoint.
    dead = write_config(tmp_path, {"local": ["http://127.0.0.1:9"]}, max_staleness_seconds=1)
    failed = xmargin("cycle", config=dead)
    assert failed.code == 3, failed.stdout + failed.stderr
    assert "poll local: FAILED" in failed.stdout

    doc = xmargin("status", "carol", "--json", config=dead).json()
    assert _holding(doc, "USDC", "wallet")["amount"] == "42"  # the last good read stays
    info = doc["chains"]["eip155:31337"]
    assert info["last_poll_failed"] is True
    assert "127.0.0.1:9" in info["last_poll_error"]
    assert doc["stale"] is True
    assert "eip155:31337" in doc["stale_chains"]


def test_bad_input_gets_one_clear_line_and_writes_nothing(xmargin: Cli, tmp_path: Path) -> None:
    config = write_config(tmp_path, {"local": ["http://127.0.0.1:9"]})
    assert xmargin("users", "add", "dave", config=config).code == 0

    bad_address = xmargin("wallets", "link", "dave", "local", "0x1234", config=config)
    assert bad_address.code == 2
    assert "0x1234" in bad_address.stderr and "Traceback" not in bad_address.stderr

    # Multicall3's address with the case of its first letter flipped: a checksum typo.
    miscased = "0xCa11bde05977b3631167028862bE2a173976CA11"
    bad_checksum = xmargin("wallets", "link", "dave", "local", miscased, config=config)
    assert bad_checksum.code == 2 and "EIP-55" in bad_checksum.stderr

    unknown_chain = xmargin("wallets", "link", "dave", "polygon", ALICE, config=config)
    assert unknown_chain.code == 2 and "unknown chain 'polygon'" in unknown_chain.stderr

    unknown_user = xmargin("status", "nobody", config=config)
    assert unknown_user.code == 2 and "nobody" in unknown_user.stderr

    duplicate = xmargin("users", "add", "dave", config=config)
    assert duplicate.code == 2 and "dave" in duplicate.stderr

    listed = xmargin("users", "list", config=config)
    assert listed.code == 0
    assert listed.stdout.strip().endswith("dave\t-")  # no wallet was linked by the failures


def test_unreachable_database_is_one_line_and_exit_1(xmargin: Cli, tmp_path: Path) -> None:
    config = write_config(tmp_path, {"local": ["http://127.0.0.1:9"]})
    result = xmargin(
        "users",
        "add",
        "erin",
        config=config,
        extra_env={"XMARGIN_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/none"},
    )
    assert result.code == 1
    assert result.stderr.startswith("error: cannot reach the database at postgresql")
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_check_names_file_and_key(xmargin: Cli, tmp_path: Path) -> None:
    config = write_config(tmp_path, {"local": ["http://127.0.0.1:9"]})
    assert xmargin("config", "check", str(config)).stdout.strip() == "ok"
    text = config.read_text().replace('init_weight = "0.8"', 'init_weight = "0.95"', 1)
    text += '\n[assets.DAI]\nfamily = "USD"\nvolatility = "0.02"\ninit_weight = "0.9"\n'
    text += (
        'maint_weight = "0.95"\ninit_liability_weight = "1.1"\nmaint_liability_weight = "1.05"\n'
    )
    text += 'deployments.local = { address = "0x6b175474e89094c44da98b954eedeac495271d0f", '
    text += 'decimals = 18 }\ndeployments.gnosis = { address = "native", decimals = 18 }\n'
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    result = xmargin("config", "check", str(bad))
    assert result.code == 2
    lines = set(result.stderr.strip().splitlines())
    assert lines == {
        f"{bad}: assets.ETH.init_weight: init_weight 0.95 > maint_weight 0.9: "
        "the initial weight must not exceed the maintenance weight",
        f"{bad}: assets.DAI.deployments.local.address: "
        "EVM address '0x6b175474e89094c44da98b954eedeac495271d0f' is not EIP-55 checksummed "
        "(expected 0x6B175474E89094C44Da98b954EedeAC495271d0F)",
        f"{bad}: assets.DAI.deployments.gnosis: asset DAI is deployed on unknown chain 'gnosis'",
        f"{bad}: assets.DAI.price: asset DAI has no price source",
    }


async def test_garbage_rpc_fails_the_poll_in_one_line_and_writes_no_observation(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    garbage = await GarbageServer().start()
    try:
        config = write_config(tmp_path, {"local": [garbage.url]})
        env = {**os.environ, "XMARGIN_DATABASE_URL": database_url}
        cycle = await asyncio.create_subprocess_exec(
            *XMARGIN,
            "cycle",
            "--config",
            str(config),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await cycle.communicate()
    finally:
        await garbage.stop()
    assert cycle.returncode == 3, err.decode()
    (failed,) = [line for line in out.decode().splitlines() if line.startswith("poll local")]
    assert "FAILED" in failed and garbage.url in failed
    async with db.session() as session:
        heads = await session.scalar(text("SELECT count(*) FROM chain_heads"))
        runs = (await session.execute(text("SELECT ok, error FROM poll_runs"))).all()
    assert heads == 0
    assert [(ok, garbage.url in error) for ok, error in runs] == [(False, True)]


async def test_cycles_prune_observations_to_the_configured_heads(
    xmargin: Cli, chain: Chain, db: Database, tmp_path: Path
) -> None:
    wallet = "0x0000000000000000000000000000000000007001"
    await seed_wallet(chain.url, chain.deployment, wallet, tokens={"USDC": 5 * USDC})
    config = write_config(tmp_path, {"local": [chain.url]}, service={"keep_heads_per_chain": 2})
    assert xmargin("users", "add", "ivan", config=config).code == 0
    assert xmargin("wallets", "link", "ivan", "local", wallet, config=config).code == 0
    for _ in range(3):
        await mine(chain.url, 3)
        assert xmargin("cycle", config=config).code == 0
    async with db.session() as session:
        heads = (await session.execute(text("SELECT height FROM chain_heads ORDER BY id"))).all()
        runs = await session.scalar(text("SELECT count(*) FROM poll_runs"))
        balance_heads = await session.scalar(
            text("SELECT count(DISTINCT chain_head_id) FROM balances")
        )
        in_use = await session.scalar(
            text("SELECT (inputs -> 'heads' ->> 'local')::bigint FROM margin_status")
        )
        first = await session.scalar(text("SELECT min(id) FROM chain_heads"))
    # The two newest of three reads, and the first: ivan's balance never changed, so his status
    # is still the one valued at the first read, and its document is rendered from those lines.
    assert len(heads) == 3 and heads[0][0] < heads[1][0] < heads[2][0]
    assert in_use == first
    assert balance_heads == 3
    assert runs is not None and runs >= 2
