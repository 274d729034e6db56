"""The web3.py transport under cancellation: polls abandoned mid-request (a scheduler timeout, a
shutdown) must not poison the endpoint for the polls that follow."""

from __future__ import annotations

import asyncio
import os

from evm_devnet_world import EvmWorld

from chains.base import Address, EndpointPolicy
from chains.evm.adapter import EvmAdapter
from chains.evm.address import to_checksum
from chains.evm.devnet import seed_wallet


async def test_polls_cancelled_mid_request_leave_the_adapter_able_to_poll(
    evm_world: EvmWorld,
) -> None:
    wallet = Address(to_checksum(os.urandom(20).hex()))
    await seed_wallet(evm_world.url, evm_world.deployment, wallet, tokens={"WBTC": 55})
    policy = EndpointPolicy(urls=(evm_world.url,), timeout_seconds=3.0, retries=0)
    spec = evm_world.deployment.chain_spec(policy.urls, policy=policy, finality="latest")
    adapter = EvmAdapter(spec)
    try:
        # Cancel eight concurrent polls after 0, 1, 2, ... event-loop steps, so cancellation
        # lands at every await of a request (session lookup, connect, send, read).
        for steps in range(16):
            polls = [asyncio.create_task(adapter.snapshot([wallet])) for _ in range(8)]
            for _ in range(steps):
                await asyncio.sleep(0)
            for poll in polls:
                poll.cancel()
            await asyncio.gather(*polls, return_exceptions=True)

        snapshot = await adapter.snapshot([wallet])
    finally:
        await adapter.aclose()

    wbtc = [b.amount_raw for b in snapshot.balances if b.account == wallet and b.asset == "WBTC"]
    assert wbtc == [55]
    assert snapshot.request_count == 2  # nothing failed or was retried
    assert adapter.endpoint_health[evm_world.url].failures == 0
