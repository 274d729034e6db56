"""EvmAdapter against a real anvil node: pinned balances, failover, Aave, line issues, prices."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from decimal import Decimal

import pytest
from eth_abi.abi import encode
from evm_devnet_world import EvmWorld

from chains.base import AdapterError, Address, ChainSnapshot, EndpointPolicy
from chains.evm.aave_v3 import decode_account_data, value_in_base
from chains.evm.adapter import EvmAdapter
from chains.evm.address import to_checksum
from chains.evm.anvil import DevnetRpc, free_port
from chains.evm.devnet import DEMO_ADDRESSES, mine, seed_wallet, set_price
from chains.evm.spec import EvmChainSpec, EvmToken

ETHER = 10**18


def new_wallet() -> Address:
    return Address(to_checksum(os.urandom(20).hex()))


def spec_for(world: EvmWorld, urls: Sequence[str] | None = None, **options: object) -> EvmChainSpec:
    policy = EndpointPolicy(
        urls=tuple(urls or (world.url,)), timeout_seconds=5.0, retries=1, backoff_seconds=0.01
    )
    return world.deployment.chain_spec(policy.urls, policy=policy, **options)  # type: ignore[arg-type]


async def read(spec: EvmChainSpec, wallets: Sequence[Address]) -> tuple[ChainSnapshot, EvmAdapter]:
    adapter = EvmAdapter(spec)
    try:
        return await adapter.snapshot(wallets), adapter
    finally:
        await adapter.aclose()


def balances(snapshot: ChainSnapshot, wallet: Address) -> dict[str, int]:
    return {b.asset: b.amount_raw for b in snapshot.balances if b.account == wallet}


async def test_deployment_lands_on_the_documented_addresses(evm_world: EvmWorld) -> None:
    world = evm_world.deployment
    assert world.tokens["USDC"].address == DEMO_ADDRESSES["USDC"]
    assert world.tokens["WETH"].address == DEMO_ADDRESSES["WETH"]
    assert world.tokens["WBTC"].address == DEMO_ADDRESSES["WBTC"]
    assert world.feeds == {k: DEMO_ADDRESSES[f"feed:{k}"] for k in ("ETH", "BTC", "USDC")}
    assert world.pool == world.data_provider == DEMO_ADDRESSES["pool"]
    async with DevnetRpc(evm_world.url) as rpc:
        for key, address in DEMO_ADDRESSES.items():
            if key != "deployer":
                assert len(await rpc.call("eth_getCode", [address, "latest"])) > 2, key


async def test_balances_at_the_pinned_block_equal_what_was_minted_and_later_moves_are_unseen(
    evm_world: EvmWorld,
) -> None:
    wallet, receiver = new_wallet(), new_wallet()
    await seed_wallet(
        evm_world.url,
        evm_world.deployment,
        wallet,
        native_wei=3 * ETHER,
        tokens={"USDC": 2_500_000_000, "WETH": 4 * ETHER, "WBTC": 12_345_678},
    )
    head = await mine(evm_world.url, 2)
    spec = spec_for(evm_world, finality="finalized")

    first, _ = await read(spec, [wallet])
    # a transfer mined after the finalized block: the next poll at `finalized` must not see it
    async with DevnetRpc(evm_world.url) as rpc:
        await rpc.call("anvil_impersonateAccount", [wallet])
        data = bytes.fromhex("a9059cbb") + encode(["address", "uint256"], [receiver, 500_000_000])
        await rpc.send(evm_world.deployment.tokens["USDC"].address, data, sender=wallet)
    second, _ = await read(spec, [wallet, receiver])
    await mine(evm_world.url, 2)
    third, _ = await read(spec, [wallet, receiver])

    assert first.read_point.height == head - 2
    assert first.read_point.finality == "finalized"
    expected = {"ETH": 3 * ETHER, "USDC": 2_500_000_000, "WETH": 4 * ETHER, "WBTC": 12_345_678}
    assert balances(first, wallet) == expected
    assert second.read_point.height == head - 1
    assert balances(second, wallet)["USDC"] == 2_500_000_000
    assert balances(second, receiver)["USDC"] == 0
    assert balances(third, wallet)["USDC"] == 2_000_000_000
    assert balances(third, receiver)["USDC"] == 500_000_000
    assert first.request_count == 2  # one batch for chain id + block, one aggregate3 eth_call


async def test_a_dead_first_rpc_url_fails_over_to_the_second(evm_world: EvmWorld) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    wallet = new_wallet()
    await seed_wallet(evm_world.url, evm_world.deployment, wallet, tokens={"WBTC": 77})

    snapshot, adapter = await read(spec_for(evm_world, [dead, evm_world.url]), [wallet])

    assert snapshot.endpoint == evm_world.url
    assert balances(snapshot, wallet)["WBTC"] == 77
    health = adapter.endpoint_health
    assert (health[dead].successes, health[dead].failures) == (0, 2)  # 1 try + 1 retry
    assert health[dead].last_error is not None and "Connect" in health[dead].last_error
    assert health[evm_world.url].failures == 0
    assert health[evm_world.url].successes == 2
    assert health[evm_world.url].last_latency_seconds is not None
    assert snapshot.request_count == 4  # 2 failed attempts on the dead URL + 2 served


async def test_aave_positions_reproduce_the_pools_own_account_data(evm_world: EvmWorld) -> None:
    wallet = new_wallet()
    await seed_wallet(
        evm_world.url,
        evm_world.deployment,
        wallet,
        aave_supply={"WETH": 5 * ETHER, "WBTC": 10_000_000, "USDC": 1_000_000_000},
        aave_borrow={"USDC": 6_000_000_000, "WETH": ETHER // 2},
    )

    snapshot, _ = await read(spec_for(evm_world, finality="latest"), [wallet])

    async with DevnetRpc(evm_world.url) as rpc:
        data = bytes.fromhex("bf92857c") + encode(["address"], [wallet])
        raw = await rpc.call(
            "eth_call",
            [
                {"to": evm_world.deployment.pool, "data": "0x" + data.hex()},
                hex(snapshot.read_point.height),
            ],
        )
    pool_view = decode_account_data(bytes.fromhex(raw[2:]))
    price_base = {
        p.asset: int(p.price.scaleb(8)) for p in snapshot.prices if p.valid
    }  # feeds have 8 decimals = Aave's USD base unit
    deposits = {p.asset: p.amount_raw for p in snapshot.positions if p.kind == "deposit"}
    borrows = {p.asset: p.amount_raw for p in snapshot.positions if p.kind == "borrow"}
    assert deposits == {"USDC": 1_000_000_000, "WETH": 5 * ETHER, "WBTC": 10_000_000}
    assert borrows == {"USDC": -6_000_000_000, "WETH": -(ETHER // 2)}
    assert {p.venue for p in snapshot.positions} == {"aave_v3:main"}

    collateral = sum(
        value_in_base(p.amount_raw, p.decimals, price_base[p.asset])
        for p in snapshot.positions
        if p.kind == "deposit"
    )
    debt = sum(
        value_in_base(-p.amount_raw, p.decimals, price_base[p.asset])
        for p in snapshot.positions
        if p.kind == "borrow"
    )
    assert collateral == pool_view.total_collateral_base == 2_200_000_000_000  # 1000+15000+6000
    assert debt == pool_view.total_debt_base == 750_000_000_000  # 6000 + 1500 USD
    prefix = f"aave_v3:main:{wallet}"
    assert snapshot.extra[f"{prefix}:total_collateral_base"] == str(collateral)
    assert snapshot.extra[f"{prefix}:total_debt_base"] == str(debt)
    assert Decimal(snapshot.extra[f"{prefix}:health_factor"]) == pool_view.health_factor
    # weighted threshold: (1000*7800 + 15000*8250 + 6000*7800) / 22000 = 8106 bps (rounded down)
    assert pool_view.current_liquidation_threshold_bps == 8106
    # HF = collateral * threshold / debt = 22000 * 0.8106 / 7500
    assert pool_view.health_factor == Decimal("2.37776")


async def test_a_reverted_balance_call_is_a_line_issue_and_nothing_else_is_lost(
    evm_world: EvmWorld,
) -> None:
    wallet = new_wallet()
    await seed_wallet(evm_world.url, evm_world.deployment, wallet, tokens={"USDC": 42})
    # a misconfigured token: the ETH/USD feed has no balanceOf, so the call reverts
    broken = EvmToken("BROKEN", evm_world.deployment.feeds["ETH"], 18)
    no_code = EvmToken("NOCODE", to_checksum("00" * 19 + "ab"), 18)
    base = spec_for(evm_world, finality="latest")
    spec = EvmChainSpec(
        chain=base.chain,
        chain_id=base.chain_id,
        endpoints=base.endpoints,
        finality=base.finality,
        tokens=(*base.tokens, broken, no_code),
        feeds=base.feeds,
        aave_pools=base.aave_pools,
    )

    snapshot, _ = await read(spec, [wallet])

    assert balances(snapshot, wallet) == {"ETH": 0, "USDC": 42, "WETH": 0, "WBTC": 0}
    assert len(snapshot.prices) == 4 and all(p.valid for p in snapshot.prices)
    messages = sorted(issue.message for issue in snapshot.issues)
    assert [issue.subject for issue in snapshot.issues] == [wallet, wallet]
    assert messages[0].startswith(
        f"BROKEN balance skipped: balanceOf on {broken.address}: call reverted"
    )
    assert messages[1].startswith(
        f"NOCODE balance skipped: balanceOf on {no_code.address}: call returned no data"
    )


async def test_chainlink_prices_decode_to_the_answers_set_on_the_feeds(evm_world: EvmWorld) -> None:
    url, world = evm_world.url, evm_world.deployment
    await set_price(url, world, "BTC", 67_123_45678901)
    await set_price(url, world, "USDC", 99_987_654)
    try:
        snapshot, _ = await read(spec_for(evm_world, finality="latest", with_aave=False), [])
        block_time = snapshot.read_point.timestamp
        await set_price(url, world, "ETH", -5)
        negative, _ = await read(spec_for(evm_world, finality="latest", with_aave=False), [])
        await set_price(url, world, "ETH", 3_100_00000000, updated_at=0)
        incomplete, _ = await read(spec_for(evm_world, finality="latest", with_aave=False), [])
    finally:
        await set_price(url, world, "ETH", 3_000_00000000)
        await set_price(url, world, "BTC", 60_000_00000000)
        await set_price(url, world, "USDC", 1_00000000)

    prices = {p.asset: p for p in snapshot.prices}
    assert prices["WBTC"].price == Decimal("67123.45678901")
    assert prices["USDC"].price == Decimal("0.99987654")
    assert prices["ETH"].price == prices["WETH"].price == Decimal("3000.00000000")
    assert prices["WBTC"].publish_time <= block_time
    assert prices["WBTC"].source == f"chainlink:{world.feeds['BTC']}"
    assert all(p.valid and p.conf == 0 for p in snapshot.prices)
    by_asset = {p.asset: p for p in negative.prices}
    assert not by_asset["ETH"].valid and by_asset["ETH"].invalid_reason == "non-positive answer -5"
    assert by_asset["WBTC"].valid
    assert {p.asset: p.invalid_reason for p in incomplete.prices if not p.valid} == {
        "ETH": "round not complete (updatedAt is 0)",
        "WETH": "round not complete (updatedAt is 0)",
    }


async def test_a_node_of_another_chain_is_refused(evm_world: EvmWorld) -> None:
    spec = spec_for(evm_world, chain="arbitrum", chain_id=42161)
    with pytest.raises(
        AdapterError,
        match=r"^arbitrum: endpoint http://127\.0\.0\.1:\d+ serves chain id 31337, expected 42161$",
    ):
        await read(spec, [new_wallet()])


async def test_a_missing_multicall3_is_an_adapter_error_naming_it(evm_world: EvmWorld) -> None:
    base = spec_for(evm_world, finality="latest")
    spec = EvmChainSpec(
        chain=base.chain,
        chain_id=base.chain_id,
        endpoints=base.endpoints,
        tokens=base.tokens,
        multicall_address=to_checksum("00" * 19 + "cd"),
    )
    with pytest.raises(
        AdapterError, match="returned no data \\(is Multicall3 deployed there\\?\\)"
    ):
        await read(spec, [new_wallet()])


async def test_many_wallets_are_chunked_and_each_line_lands_on_its_wallet(
    evm_world: EvmWorld,
) -> None:
    wallets = [new_wallet() for _ in range(40)]
    async with DevnetRpc(evm_world.url) as rpc:
        await rpc.batch([("anvil_setBalance", [w, hex(1_000 + i)]) for i, w in enumerate(wallets)])
    await mine(evm_world.url, 1)
    spec = spec_for(evm_world, finality="latest", calls_per_batch=7)

    snapshot, _ = await read(spec, wallets)

    assert [balances(snapshot, w)["ETH"] for w in wallets] == [1_000 + i for i in range(40)]
    # balances + feeds + each reserve's configuration and oracle price + aave, 7 per eth_call
    aggregate_calls = -(-(40 * 4 + 8 + 2 * 3 + 40 * 4) // 7)
    assert snapshot.request_count == 1 + aggregate_calls


async def test_a_silent_endpoint_times_out_and_the_adapter_remembers_to_try_it_last(
    evm_world: EvmWorld,
) -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # hold the connection open until the client gives up
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    silent = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    wallet = new_wallet()
    await seed_wallet(evm_world.url, evm_world.deployment, wallet, tokens={"USDC": 5})
    policy = EndpointPolicy(
        urls=(silent, evm_world.url), timeout_seconds=0.3, retries=0, backoff_seconds=0.01
    )
    adapter = EvmAdapter(evm_world.deployment.chain_spec(policy.urls, policy=policy))
    try:
        first = await adapter.snapshot([wallet])
        second = await adapter.snapshot([wallet, wallet])
    finally:
        await adapter.aclose()
        server.close()

    health = adapter.endpoint_health[silent]
    assert health.failures == 1
    assert health.last_error is not None and health.last_error.startswith("timed out")
    assert first.endpoint == second.endpoint == evm_world.url
    assert first.request_count == 3  # timed out once, then the batch and the eth_call
    assert second.request_count == 2  # the silent endpoint now goes last
    assert balances(second, wallet)["USDC"] == 5
    assert len(second.balances) == 4  # the duplicate wallet is read once


async def test_a_malformed_wallet_is_a_line_issue_beside_good_lines(evm_world: EvmWorld) -> None:
    wallet = new_wallet()
    await seed_wallet(evm_world.url, evm_world.deployment, wallet, tokens={"WETH": 8})

    snapshot, _ = await read(spec_for(evm_world, finality="latest"), [Address("0x12"), wallet])

    assert balances(snapshot, wallet)["WETH"] == 8
    assert [(i.subject, i.message) for i in snapshot.issues] == [
        ("0x12", "EVM address '0x12' is not 0x followed by 40 hex digits")
    ]
