"""A real anvil node with Multicall3 and the demo world, shared by the EVM integration tests.

anvil runs with one slot per epoch, so its `safe` tag is head-1 and `finalized` is head-2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from evm_devnet_world import EvmWorld

from chains.evm.devnet import AnvilNode, deploy_demo_world


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def evm_world() -> AsyncIterator[EvmWorld]:
    async with AnvilNode(chain_id=31337, slots_in_an_epoch=1) as node:
        deployment = await deploy_demo_world(node.url)
        yield EvmWorld(node, deployment)
