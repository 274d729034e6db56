"""The Hyperliquid harness of the adapter contract suite: the local HyperCore info server (real
HTTP) with the demo world, its clock frozen so that a read point can be asked for and met.

HyperCore reads at `latest`: a credit is visible at once; `credit_unfinalized` books a credit
one millisecond after the current `time`, which the adapter reading now must not see. Balances
are spot balances (USDC, HYPE, UETH), credited in base units of their weiDecimals.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest_asyncio

from chains.base import Address, ChainAdapter, ReadPoint
from chains.hyperliquid.adapter import HyperliquidAdapter
from chains.hyperliquid.localnet import LocalHyperliquid, World, demo_spec, seed_demo_world
from chains.hyperliquid.spec import SpotToken
from tests.adapter_contract.garbage_server import GarbageServer

DECIMALS = {"USDC": 8, "HYPE": 8, "UETH": 9}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class HyperliquidHarness:
    family = "hyperliquid"
    token_assets = ("HYPE", "UETH")
    native_asset = "USDC"  # HyperCore's quote and collateral token

    def __init__(self, venue: LocalHyperliquid, garbage: GarbageServer) -> None:
        self._venue = venue
        self._garbage = garbage
        self._dead_url = f"http://127.0.0.1:{_closed_port()}/info"
        self._wallet_numbers = itertools.count(1)

    async def new_wallet(self) -> Address:
        return Address(f"0x{0xC0DE0000 + next(self._wallet_numbers):040x}")

    def _amount(self, asset: str, amount_raw: int) -> Decimal:
        return Decimal(amount_raw).scaleb(-DECIMALS[asset])

    async def credit(self, wallet: Address, asset: str, amount_raw: int) -> None:
        self._venue.world.credit_spot(wallet, asset, self._amount(asset, amount_raw))

    async def credit_unfinalized(self, wallet: Address, asset: str, amount_raw: int) -> None:
        later = self._venue.world.now_ms() + 1
        self._venue.world.credit_spot(wallet, asset, self._amount(asset, amount_raw), at_ms=later)

    async def read_point_at_finality(self) -> ReadPoint:
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                self.node_url, json={"type": "clearinghouseState", "user": "0x" + "0" * 40}
            )
        time_ms = int(answer.json()["time"])
        return ReadPoint(time_ms, f"hypercore-time:{time_ms}", time_ms // 1000, "latest")

    def adapter(self, urls: tuple[str, ...] | None = None) -> ChainAdapter:
        spot = tuple(SpotToken(coin, coin, decimals) for coin, decimals in DECIMALS.items())
        spec = demo_spec(urls or (self.node_url,), chain="hyperliquid-localnet", spot_tokens=spot)
        return HyperliquidAdapter(spec)

    @property
    def node_url(self) -> str:
        return self._venue.url

    @property
    def dead_url(self) -> str:
        return self._dead_url

    @property
    def garbage_url(self) -> str:
        return self._garbage.url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def hyperliquid_harness() -> AsyncIterator[HyperliquidHarness]:
    garbage = await GarbageServer().start()
    with LocalHyperliquid(World(manual_time_ms=1_764_000_000_000)) as venue:
        seed_demo_world(venue.world)
        yield HyperliquidHarness(venue, garbage)
    await garbage.stop()
