"""`xmargin run` (the daemon) and `xmargin demo --once`, run as a user runs them."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import httpx
from eth_utils import to_checksum_address

from aggregator.config import load_config
from aggregator.publish.documents import published_status
from aggregator.store.accounts.users import get_user
from aggregator.store.database import Database
from chains.evm.devnet import mine, seed_wallet
from tests.e2e.conftest import XMARGIN, Chain, Cli, write_config

GRACE = "0x0000000000000000000000000000000000009ace"


async def test_daemon_polls_publishes_and_stops_cleanly_on_sigterm(
    xmargin: Cli, chain: Chain, db: Database, database_url: str, tmp_path: Path
) -> None:
    wallet = to_checksum_address(GRACE)
    await seed_wallet(chain.url, chain.deployment, wallet, tokens={"USDC": 9 * 10**6})
    await mine(chain.url, 3)
    config = write_config(tmp_path, {"local": [chain.url]})
    assert xmargin("users", "add", "grace", config=config).code == 0
    assert xmargin("wallets", "link", "grace", "local", wallet, config=config).code == 0

    daemon = await asyncio.create_subprocess_exec(
        *XMARGIN,
        "run",
        "--port",
        "0",
        "--config",
        str(config),
        env={**os.environ, "XMARGIN_DATABASE_URL": database_url},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []

    async def collect() -> None:
        assert daemon.stdout is not None
        async for raw_line in daemon.stdout:
            lines.append(raw_line.decode())

    reader = asyncio.create_task(collect())
    try:
        document = None
        deadline = time.monotonic() + 60
        while document is None and time.monotonic() < deadline and daemon.returncode is None:
            async with db.session() as session:
                user = await get_user(session, "grace")
                assert user is not None
                record = await published_status(session, load_config(config), user.id)
            if record is not None and record.document["holdings"]:
                document = record.document
            else:
                await asyncio.sleep(0.5)
        assert document is not None, "the daemon published no status with holdings"
        assert [h["amount"] for h in document["holdings"] if h["asset"] == "USDC"] == ["9"]
        # The API is served beside the jobs, and /metrics carries the daemon's metrics too.
        urls = [m.group(1) for line in lines if (m := re.search(r"api at (http://\S+)", line))]
        assert urls, "".join(lines)
        async with httpx.AsyncClient(base_url=urls[0], timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 200
            metrics = (await http.get("/metrics")).text
        assert 'xmargin_polls_total{chain="local",outcome="ok"}' in metrics
        assert "xmargin_publish_duration_seconds_count" in metrics
        assert "xmargin_http_requests_total" in metrics
    finally:
        daemon.send_signal(signal.SIGTERM)
        await asyncio.wait_for(daemon.wait(), timeout=60)
        await reader
    output = "".join(lines)
    assert daemon.returncode == 0, output
    assert "xmargin daemon started" in output
    assert "stopping" in output


def test_demo_once_runs_local_chains_and_prints_the_table(xmargin: Cli) -> None:
    devnet = Path(__file__).parents[2] / "config/devnet.toml"
    result = xmargin("demo", "--once", "--port", "0", config=devnet)
    assert result.code == 0, result.stdout + result.stderr
    assert re.search(r"status page and API at http://127\.0\.0\.1:\d+", result.stdout)
    status_part, _, venue_part = result.stdout.partition("venues: each account")
    rows = {line.split("│")[1].strip(): line for line in status_part.splitlines() if "│" in line}
    assert "healthy" in rows["alice"]
    assert "margin_call" in rows["bob"]  # near liquidation by design
    # Then each venue account by its own rules, and what binds first for each user.
    venue_rows = [line for line in venue_part.splitlines() if line.startswith("│ bob")]
    assert any("aave_v3:devnet" in line and "health_factor" in line for line in venue_rows)
    assert re.search(r"^bob: binding ", venue_part, re.MULTILINE)
    for chain in ("devnet_l1", "devnet_l2", "devnet_solana"):
        assert f"poll {chain}: block" in result.stdout
