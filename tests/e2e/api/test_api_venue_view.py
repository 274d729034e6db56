"""The venue view as a front end and an operator meet it: over real HTTP from statuses the real
poll and publish wrote from a real anvil chain, each status carries the Aave pool's own health
factor (equal to the pool's `getUserAccountData` at the same block, to the last WAD unit) beside
the unified status, the view that binds first, and what-if results for both; `v_user_venues`
and `xmargin status` show the same lines."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from decimal import Decimal
from typing import Any

import httpx
import psycopg

from aggregator.store.database import libpq_url
from chains.evm.aave_v3 import decode_account_data
from chains.evm.abi import GET_USER_ACCOUNT_DATA, encode_address_call
from chains.evm.address import address_bytes
from chains.evm.anvil import DevnetRpc
from tests.e2e.api.conftest import BOB, CHAIN, ApiWorld
from tests.e2e.conftest import REPO

AAVE = "aave_v3:devnet"
BORROW = {"action": "borrow", "chain": CHAIN, "venue": AAVE, "asset": "USDC"}
WAD = Decimal(10**18)


async def _pool_health_factor(world: ApiWorld, wallet: str, height: int) -> int:
    call = encode_address_call(GET_USER_ACCOUNT_DATA, address_bytes(wallet))
    async with DevnetRpc(world.node.url) as rpc:
        raw = await rpc.call(
            "eth_call", [{"to": world.deployment.pool, "data": "0x" + call.hex()}, hex(height)]
        )
    return decode_account_data(bytes.fromhex(str(raw)[2:])).health_factor_wad


def _aave_line(status: dict[str, Any]) -> dict[str, Any]:
    [line] = [v for v in status["venues"] if v["venue"] == AAVE]
    return line


async def test_the_pools_own_health_factor_stands_beside_the_unified_status(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    body = (await client.get("/v1/users/bob/margin")).json()
    line = _aave_line(body)
    assert (line["rules"], line["chain"], line["metric"]) == ("aave_v3", CHAIN, "health_factor")
    assert line["account"] == f"{CHAIN}:{BOB}"
    wad = await _pool_health_factor(world, BOB, line["read_point"]["height"])
    assert Decimal(line["value"]) == Decimal(wad) / WAD  # to the last unit of the WAD
    assert line["reported"]["health_factor_wad"] == str(wad)
    assert line["read_point"]["height"] == body["chains"][0]["height"]
    # The pool liquidates at WETH = debt / (WETH x threshold); its shock is the same move.
    weth = {p["asset"]: p for p in line["liquidation_prices"]}["WETH"]
    assert weth["liquidation_price_usd"] is not None and weth["price_usd"] is not None
    assert Decimal(weth["liquidation_price_usd"]) < Decimal(weth["price_usd"])
    shock = Decimal(line["liquidation_shock"])
    moved = Decimal(weth["price_usd"]) * (1 + shock)
    assert abs(moved - Decimal(weth["liquidation_price_usd"])) < Decimal("1e-6")
    # binding: the nearer of the unified view and the pool
    unified = body["liquidation_shock"]
    candidates = [abs(shock)] + ([abs(Decimal(unified))] if unified is not None else [])
    assert abs(Decimal(body["binding"]["liquidation_shock"])) == min(candidates)
    if body["binding"]["view"] == "venue":
        assert body["binding"]["venue"] == AAVE and body["binding"]["chain"] == CHAIN
    assert body["binding_reason"] is None


async def test_what_if_reports_the_venue_before_and_after(client: httpx.AsyncClient) -> None:
    published = _aave_line((await client.get("/v1/users/bob/margin")).json())
    response = await client.post(
        "/v1/users/bob/simulate",
        json={"changes": [{**BORROW, "amount": "500"}]},
    )
    assert response.status_code == 200, response.text
    before, after = _aave_line(response.json()["before"]), _aave_line(response.json()["after"])
    assert before["value"] == published["value"]
    assert Decimal(after["requirement_usd"]) - Decimal(before["requirement_usd"]) == 500
    assert Decimal(after["health_usd"]) == Decimal(after["collateral_usd"]) - 500 - Decimal(
        before["requirement_usd"]
    )
    assert Decimal(after["value"]) < Decimal(before["value"])
    crash = await client.post(
        "/v1/users/bob/simulate", json={"changes": [{"action": "price_shock", "change": "-0.2"}]}
    )
    assert crash.status_code == 200, crash.text
    after = crash.json()["after"]
    assert _aave_line(after)["status"] == "liquidatable"
    assert after["binding"]["liquidation_shock"] == "0"


async def test_operators_see_the_venue_lines(world: ApiWorld, client: httpx.AsyncClient) -> None:
    line = _aave_line((await client.get("/v1/users/bob/margin")).json())
    with psycopg.connect(libpq_url(world.database_url)) as conn:
        rows = conn.execute(
            "SELECT venue, chain, value, status FROM v_user_venues WHERE user_name = 'bob'"
        ).fetchall()
    assert rows == [(AAVE, CHAIN, Decimal(line["value"]), line["status"])]
    command = [sys.executable, "-m", "aggregator.cli", "status", "bob"]
    shown = (
        await asyncio.to_thread(
            subprocess.run,
            [*command, "--config", str(world.config_path)],
            env={**os.environ, "XMARGIN_DATABASE_URL": world.database_url},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    ).stdout
    assert AAVE in shown and "health_factor" in shown and "bob: binding" in shown
    assert line["value"][:6] in shown
