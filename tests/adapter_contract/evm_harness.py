"""The EVM harness of the adapter contract suite: a real anvil node with the demo world.

The adapter reads at `latest-2`, so `credit` mines two blocks after the credit and
`credit_unfinalized` mines none.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest_asyncio

from chains.base import Address, ChainAdapter, EndpointPolicy, ReadPoint
from chains.evm.adapter import EvmAdapter
from chains.evm.address import to_checksum
from chains.evm.anvil import DevnetRpc, free_port
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mine, seed_wallet
from tests.adapter_contract.garbage_server import GarbageServer

FINALITY_DEPTH = 2


class EvmHarness:
    family = "evm"
    token_assets = ("USDC", "WETH", "WBTC")
    native_asset = "ETH"

    def __init__(self, node: AnvilNode, world: EvmDeployment, garbage: GarbageServer) -> None:
        self._node = node
        self._world = world
        self._garbage = garbage
        self._dead_url = f"http://127.0.0.1:{free_port()}"

    async def new_wallet(self) -> Address:
        return Address(to_checksum(os.urandom(20).hex()))

    async def _give(self, wallet: Address, asset: str, amount_raw: int) -> None:
        if asset == self.native_asset:
            await seed_wallet(self._node.url, self._world, wallet, native_wei=amount_raw)
        else:
            await seed_wallet(self._node.url, self._world, wallet, tokens={asset: amount_raw})

    async def credit(self, wallet: Address, asset: str, amount_raw: int) -> None:
        await self._give(wallet, asset, amount_raw)
        await mine(self._node.url, FINALITY_DEPTH)

    async def credit_unfinalized(self, wallet: Address, asset: str, amount_raw: int) -> None:
        await self._give(wallet, asset, amount_raw)

    async def read_point_at_finality(self) -> ReadPoint:
        async with DevnetRpc(self._node.url) as rpc:
            head = int(await rpc.call("eth_blockNumber"), 16)
            block = await rpc.call("eth_getBlockByNumber", [hex(head - FINALITY_DEPTH), False])
        return ReadPoint(
            int(block["number"], 16), block["hash"], int(block["timestamp"], 16), "latest"
        )

    def adapter(self, urls: tuple[str, ...] | None = None) -> ChainAdapter:
        policy = EndpointPolicy(
            urls=urls or (self._node.url,), timeout_seconds=5.0, retries=1, backoff_seconds=0.01
        )
        spec = self._world.chain_spec(
            policy.urls, chain="evm-devnet", finality=f"latest-{FINALITY_DEPTH}", policy=policy
        )
        return EvmAdapter(spec)

    @property
    def node_url(self) -> str:
        return self._node.url

    @property
    def dead_url(self) -> str:
        return self._dead_url

    @property
    def garbage_url(self) -> str:
        return self._garbage.url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def evm_harness() -> AsyncIterator[EvmHarness]:
    garbage = await GarbageServer().start()
    async with AnvilNode(chain_id=31337) as node:
        world = await deploy_demo_world(node.url)
        yield EvmHarness(node, world, garbage)
    await garbage.stop()
