"""A fresh anvil node per module for the trust contracts (verifier, EIP-1271 dev wallet)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from chains.evm.devnet import AnvilNode


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def anvil() -> AsyncIterator[AnvilNode]:
    async with AnvilNode(chain_id=31337) as node:
        yield node
