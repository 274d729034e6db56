"""The Solana harness of the adapter contract suite: a real LiteSVM chain behind the local
JSON-RPC server, seeded with the demo world.

The adapter reads at `finalized`, which lags the processed slot by `finalized_lag` slots, so
`credit` finalizes (advances past the lag) after the credit and `credit_unfinalized` does not.
Mints are credited through the real SPL Token / Token-2022 programs (ATA program + mint_to).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from chains.base import Address, ChainAdapter, ReadPoint
from chains.solana.adapter import SolanaAdapter
from chains.solana.localnet import (
    DEMO_SOLANA,
    LocalSolana,
    demo_spec,
    keypair_from_seed,
    seed_demo_world,
)
from tests.adapter_contract.garbage_server import GarbageServer


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SolanaHarness:
    family = "solana"
    token_assets = ("USDC", "PYUSD")  # SPL Token and Token-2022
    native_asset = "SOL"

    def __init__(self, chain: LocalSolana, garbage: GarbageServer) -> None:
        self._chain = chain
        self._garbage = garbage
        self._dead_url = f"http://127.0.0.1:{_closed_port()}"
        self._wallet_numbers = itertools.count()
        self._mints = {"USDC": DEMO_SOLANA.usdc_mint, "PYUSD": DEMO_SOLANA.pyusd_mint}

    async def new_wallet(self) -> Address:
        seed = f"contract-suite-wallet-{next(self._wallet_numbers)}"
        return Address(str(keypair_from_seed(seed).pubkey()))

    def _give(self, wallet: Address, asset: str, amount_raw: int) -> None:
        if asset == self.native_asset:
            self._chain.airdrop(wallet, amount_raw)
        else:
            self._chain.mint_to(wallet, self._mints[asset], amount_raw)

    async def credit(self, wallet: Address, asset: str, amount_raw: int) -> None:
        self._give(wallet, asset, amount_raw)
        self._chain.finalize()

    async def credit_unfinalized(self, wallet: Address, asset: str, amount_raw: int) -> None:
        self._give(wallet, asset, amount_raw)

    async def read_point_at_finality(self) -> ReadPoint:
        async with httpx.AsyncClient() as client:
            finalized = [{"commitment": "finalized"}]
            latest = await _rpc(client, self.node_url, "getLatestBlockhash", finalized)
            slot = latest["context"]["slot"]
            block_time = await _rpc(client, self.node_url, "getBlockTime", [slot])
        return ReadPoint(slot, latest["value"]["blockhash"], block_time, "finalized")

    def adapter(self, urls: tuple[str, ...] | None = None) -> ChainAdapter:
        return SolanaAdapter(demo_spec(urls or (self.node_url,), chain="solana-localnet"))

    @property
    def node_url(self) -> str:
        return self._chain.url

    @property
    def dead_url(self) -> str:
        return self._dead_url

    @property
    def garbage_url(self) -> str:
        return self._garbage.url


async def _rpc(client: httpx.AsyncClient, url: str, method: str, params: list[object]) -> dict:
    response = await client.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    )
    return response.json()["result"]  # type: ignore[no-any-return]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def solana_harness() -> AsyncIterator[SolanaHarness]:
    garbage = await GarbageServer().start()
    with LocalSolana() as chain:
        seed_demo_world(chain)
        yield SolanaHarness(chain, garbage)
    await garbage.stop()
