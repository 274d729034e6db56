"""An alert end to end: a real `xmargin cycle` reads a borrower from anvil, publishes it into
margin_call, writes the outbox event in that pass, and delivers it signed to a real receiver;
the next cycle with nothing new sends nothing more."""

from __future__ import annotations

import asyncio
from pathlib import Path

from eth_utils import to_checksum_address

from aggregator.store.database import Database
from chains.evm.devnet import mine, seed_wallet
from tests.alert_receiver import Receiver
from tests.e2e.conftest import Chain, Cli, write_config

SECRET_ENV = "XMARGIN_E2E_CYCLE_HOOK_SECRET"
SECRET = "whsec-cycle-0a1b2c3d"
IVY = to_checksum_address("0x000000000000000000000000000000000000a1e7")


async def test_a_cycle_publishing_a_margin_call_delivers_one_signed_alert(
    xmargin: Cli, chain: Chain, db: Database, tmp_path: Path
) -> None:
    # 10 WETH supplied at 3,000 against 26,000 USDC borrowed: over the initial requirement
    # (0.8 × 30,000 < 26,000 × 1.2), under the maintenance one.
    await seed_wallet(
        chain.url,
        chain.deployment,
        IVY,
        aave_supply={"WETH": 10 * 10**18},
        aave_borrow={"USDC": 23_000 * 10**6},
    )
    await mine(chain.url, 3)
    async with Receiver(SECRET.encode()) as receiver:
        config = write_config(tmp_path, {"local": [chain.url]})
        with config.open("a", encoding="utf-8") as toml:
            toml.write(
                "\n[[alerts.webhooks]]\n"
                'name = "desk"\n'
                f'url = "{receiver.url}"\n'
                f'secret_env = "{SECRET_ENV}"\n'
            )
        env = {SECRET_ENV: SECRET}
        assert xmargin("users", "add", "ivy", config=config).code == 0
        assert xmargin("wallets", "link", "ivy", "local", IVY, config=config).code == 0
        first = await asyncio.to_thread(xmargin, "cycle", config=config, extra_env=env)
        assert first.code == 0, first.stderr
        status = xmargin("status", "ivy", "--json", config=config).json()["status"]
        assert status == "margin_call"
        [request] = receiver.requests
        assert request.signed and request.answered == 200
        assert request.event["user"]["name"] == "ivy"
        assert request.event["type"] == "margin_call"
        assert request.event["previous"] is None
        assert request.event["status"]["status"] == "margin_call"
        again = await asyncio.to_thread(xmargin, "cycle", config=config, extra_env=env)
        assert again.code == 0, again.stderr
        assert len(receiver.requests) == 1  # no transition, no second alert
