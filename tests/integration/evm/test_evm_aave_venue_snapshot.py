"""The EVM adapter reads each Aave pool's reserve parameters and oracle prices in the same
aggregate3 batch as the positions (one block), and records them as the wallet's venue account:
measured by `aggregator.venues.aave_rules`, its health factor is the pool's own
`getUserAccountData` to the last WAD unit, and its liquidation prices and shock bring the
health factor to 1."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from evm_devnet_world import EvmWorld

from aggregator.venues.aave_rules import RULES
from aggregator.venues.assess import ReadPoint, assess, shocked_prices
from chains.base import Address, EndpointPolicy
from chains.evm.adapter import EvmAdapter
from chains.evm.address import to_checksum
from chains.evm.devnet import seed_wallet

ETHER = 10**18
POINT = ReadPoint(1, "0x00", "2026-01-01T00:00:00Z")


async def snapshot_of(world: EvmWorld, wallet: Address, *, oracle: bool = True):  # type: ignore[no-untyped-def]
    policy = EndpointPolicy(urls=(world.url,), timeout_seconds=5.0, retries=1)
    spec = world.deployment.chain_spec(policy.urls, policy=policy, finality="latest")
    if not oracle:
        from dataclasses import replace

        spec = replace(spec, aave_pools=tuple(replace(p, oracle=None) for p in spec.aave_pools))
    adapter = EvmAdapter(spec)
    try:
        return await adapter.snapshot([wallet])
    finally:
        await adapter.aclose()


@pytest.mark.parametrize(
    ("supply", "borrow"),
    [
        ({"WETH": 5 * ETHER, "WBTC": 10_000_000, "USDC": 1_000_000_000}, {"USDC": 6_000_000_000}),
        ({"WETH": 1_234_567_891_234_567_891, "WBTC": 1_234_567}, {"USDC": 2_345_678_901}),
        ({"WETH": ETHER}, {"USDC": 2_474_999_999}),
    ],
)
async def test_venue_account_health_factor_equals_the_pools(
    evm_world: EvmWorld, supply: dict[str, int], borrow: dict[str, int]
) -> None:
    wallet = Address(to_checksum(os.urandom(20).hex()))
    await seed_wallet(
        evm_world.url, evm_world.deployment, wallet, aave_supply=supply, aave_borrow=borrow
    )
    snapshot = await snapshot_of(evm_world, wallet)

    [venue] = snapshot.venue_accounts
    assert venue.account == wallet and venue.rules == "aave_v3" and venue.problem is None
    assert venue.venue == next(p.venue for p in snapshot.positions if p.account == wallet)
    held = {(a.asset, a.amount_raw > 0) for a in venue.assets}
    assert held == {(s, True) for s in supply} | {(b, False) for b in borrow}
    measure = RULES.measure(venue, {})
    assert measure.metric is not None
    assert measure.extra is not None
    assert measure.extra["health_factor_wad"] == venue.reported["health_factor_wad"]
    assert measure.metric == Decimal(venue.reported["health_factor_wad"]) / ETHER

    line = assess(
        venue, "eip155:31337", "caip10", POINT, stable=frozenset({"USDC"}), warning_at=Decimal(1)
    )
    assert line.value == measure.metric and line.status in ("healthy", "warning")
    assert line.liquidation_shock is not None and -1 < line.liquidation_shock < 0
    shocked = RULES.measure(
        venue, shocked_prices(venue, frozenset({"USDC"}), 1 + line.liquidation_shock)
    )
    assert shocked.metric is not None and abs(shocked.metric - 1) < Decimal("1e-6")
    for asset, price in line.liquidation_prices.items():
        if price is None or asset == "USDC":
            continue
        moved = RULES.measure(venue, {asset: price})
        assert moved.metric is not None and abs(moved.metric - 1) < Decimal("1e-6"), asset


async def test_a_pool_without_an_oracle_gives_a_venue_line_that_says_so(
    evm_world: EvmWorld,
) -> None:
    wallet = Address(to_checksum(os.urandom(20).hex()))
    await seed_wallet(
        evm_world.url,
        evm_world.deployment,
        wallet,
        aave_supply={"WETH": ETHER},
        aave_borrow={"USDC": 100_000_000},
    )
    snapshot = await snapshot_of(evm_world, wallet, oracle=False)

    [venue] = snapshot.venue_accounts
    assert venue.problem is not None and "oracle" in venue.problem
    line = assess(
        venue, "eip155:31337", "caip10", POINT, stable=frozenset({"USDC"}), warning_at=Decimal(1)
    )
    assert line.status == "unknown" and line.value is None and line.problem == venue.problem
    # the positions themselves are still read
    assert {p.asset for p in snapshot.positions if p.account == wallet} == {"WETH", "USDC"}
