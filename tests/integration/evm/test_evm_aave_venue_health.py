"""Aave's health factor recomputed from the venue's own parameters and oracle prices equals the
pool's `getUserAccountData`, to the last WAD unit: every read of one position is pinned to one
block, the math is aggregator/venues/aave.py (v3-core rules, which the devnet pool follows)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

import pytest
from evm_devnet_world import EvmWorld

from aggregator.venues.aave import AaveReserve, account, liquidation_price, reserve_from_reads
from chains.evm.aave_v3 import (
    AccountData,
    asset_price_calldata,
    decode_account_data,
    decode_asset_price,
    decode_reserve_configuration,
    decode_user_reserve,
    reserve_configuration_calldata,
    user_reserve_calldata,
)
from chains.evm.abi import GET_USER_ACCOUNT_DATA, encode_address_call
from chains.evm.address import address_bytes, to_checksum
from chains.evm.anvil import DevnetRpc
from chains.evm.devnet import DEMO_RESERVES, seed_wallet

ETHER = 10**18


async def read_pinned(world: EvmWorld, wallet: str) -> tuple[list[AaveReserve], AccountData, int]:
    """Reserve configuration, oracle price and user reserve data of every reserve, and the pool's
    own account data, all at the current head."""
    deployment = world.deployment
    async with DevnetRpc(world.url) as rpc:
        block = hex(int(await rpc.call("eth_blockNumber"), 16))

        async def call(to: str, data: bytes) -> bytes:
            raw = await rpc.call("eth_call", [{"to": to, "data": "0x" + data.hex()}, block])
            return bytes.fromhex(str(raw)[2:])

        reserves = []
        for symbol, *_ in DEMO_RESERVES:
            asset = deployment.tokens[symbol].address
            assert asset is not None
            config = decode_reserve_configuration(
                await call(deployment.data_provider, reserve_configuration_calldata(asset))
            )
            price = decode_asset_price(await call(deployment.pool, asset_price_calldata(asset)))
            user = decode_user_reserve(
                await call(deployment.data_provider, user_reserve_calldata(asset, wallet))
            )
            reserves.append(reserve_from_reads(symbol, user, config, price))
        pool_view = decode_account_data(
            await call(
                deployment.pool, encode_address_call(GET_USER_ACCOUNT_DATA, address_bytes(wallet))
            )
        )
    return reserves, pool_view, int(block, 16)


POSITIONS: Mapping[str, tuple[dict[str, int], dict[str, int], int]] = {
    # supply, borrow, the pool's health factor (WAD) they are expected to give
    "three_collaterals_two_debts": (
        {"WETH": 5 * ETHER, "WBTC": 10_000_000, "USDC": 1_000_000_000},
        {"USDC": 6_000_000_000, "WETH": ETHER // 2},
        2_377_760_000_000_000_000,
    ),
    "odd_amounts_rounding": (
        {"WETH": 1_234_567_891_234_567_891, "WBTC": 1_234_567},
        {"USDC": 2_345_678_901, "WBTC": 123_457},
        # percentMul(444444387370, 8175) wadDiv 241975310100; the v3-origin rules (no floored
        # average) would give 1_501_530_418_661_709_569 here, so the two revisions differ
        1_501_530_410_374_707_068,
    ),
    "close_to_liquidation": (
        {"WETH": ETHER},
        {"USDC": 2_474_999_999},
        1_000_000_000_404_040_404,  # 3000 * 0.825 / 2474.999999
    ),
}


@pytest.mark.parametrize("name", list(POSITIONS))
async def test_recomputed_health_factor_equals_the_pools_to_the_wei(
    evm_world: EvmWorld, name: str
) -> None:
    supply, borrow, expected_hf = POSITIONS[name]
    wallet = to_checksum(os.urandom(20).hex())
    await seed_wallet(
        evm_world.url, evm_world.deployment, wallet, aave_supply=supply, aave_borrow=borrow
    )

    reserves, pool_view, block = await read_pinned(evm_world, wallet)
    venue = account(reserves)

    assert venue.health_factor_wad == pool_view.health_factor_wad, (name, block)
    assert pool_view.health_factor_wad == expected_hf
    assert venue.total_collateral_base == pool_view.total_collateral_base
    assert venue.total_debt_base == pool_view.total_debt_base
    assert venue.avg_liquidation_threshold_bps == pool_view.current_liquidation_threshold_bps
    assert venue.avg_ltv_bps == pool_view.ltv_bps
    assert venue.available_borrows_base == pool_view.available_borrows_base
    assert pool_view.health_factor_wad > 10**18  # every position here is still healthy
    for symbol in {*supply, *borrow}:  # at a liquidation price the health factor is 1
        price = liquidation_price(reserves, symbol)
        if price is None:
            continue
        price_base = int(price.scaleb(8))  # truncated to a base unit: off by < 1 / price_base
        moved = [replace(r, price_base=price_base) if r.asset == symbol else r for r in reserves]
        slack = 2 * 10**18 // price_base + 10**8
        # exact over the weighted thresholds (v3-origin, up to rounding); v3-core floors the
        # average threshold to whole bps first, which can only lower it, by < 1 bps
        assert abs(account(moved, "v3-origin").health_factor_wad - 10**18) < slack, symbol
        core = account(moved)
        floor_loss = 10**18 // core.avg_liquidation_threshold_bps
        assert 10**18 - floor_loss - slack < core.health_factor_wad < 10**18 + slack, symbol
    if name == "close_to_liquidation":  # 2474.999999 USD / 0.825
        assert liquidation_price(reserves, "WETH") == Decimal("2474.999999") / Decimal("0.825")


async def test_a_wallet_without_debt_has_the_maximal_health_factor(evm_world: EvmWorld) -> None:
    wallet = to_checksum(os.urandom(20).hex())
    await seed_wallet(evm_world.url, evm_world.deployment, wallet, aave_supply={"WBTC": 5})

    reserves, pool_view, _ = await read_pinned(evm_world, wallet)
    venue = account(reserves)

    assert venue.health_factor_wad == pool_view.health_factor_wad == 2**256 - 1
    assert venue.health_factor is None
    assert venue.total_collateral_base == pool_view.total_collateral_base == 300_000  # 0.003 USD
    assert liquidation_price(reserves, "WBTC") is None


async def test_the_pool_reports_the_demo_reserve_parameters(evm_world: EvmWorld) -> None:
    deployment = evm_world.deployment
    async with DevnetRpc(evm_world.url) as rpc:
        for symbol, _, ltv, threshold in DEMO_RESERVES:
            token = deployment.tokens[symbol]
            assert token.address is not None
            raw = await rpc.call(
                "eth_call",
                [
                    {
                        "to": deployment.data_provider,
                        "data": "0x" + reserve_configuration_calldata(token.address).hex(),
                    },
                    "latest",
                ],
            )
            config = decode_reserve_configuration(bytes.fromhex(str(raw)[2:]))
            assert (config.decimals, config.ltv_bps, config.liquidation_threshold_bps) == (
                token.decimals,
                ltv,
                threshold,
            )
            assert config.usage_as_collateral_enabled and config.is_active
            assert not config.is_frozen
