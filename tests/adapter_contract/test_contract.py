"""The contract every chain adapter keeps, run over every registered harness (real nodes).

Besides the ChainAdapter protocol, adapters expose `endpoint_health`: a mapping from URL to a
record with `successes`, `failures` and `last_error`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chains.base import (
    AdapterError,
    Address,
    ChainAdapter,
    ChainSnapshot,
    HeadCheck,
    HeadRechecking,
)
from tests.adapter_contract.harness import AdapterHarness


def amounts_of(snapshot: ChainSnapshot, wallet: Address) -> dict[str, int]:
    """Total per asset held by `wallet` in the snapshot."""
    totals: dict[str, int] = {}
    for balance in snapshot.balances:
        if balance.account == wallet:
            totals[balance.asset] = totals.get(balance.asset, 0) + balance.amount_raw
    return totals


async def take(adapter: ChainAdapter, wallets: Sequence[Address]) -> ChainSnapshot:
    try:
        return await adapter.snapshot(wallets)
    finally:
        await adapter.aclose()


async def test_snapshot_is_read_at_the_node_block_of_the_configured_finality(
    harness: AdapterHarness,
) -> None:
    wallet = await harness.new_wallet()
    credited = {harness.native_asset: 7_000_000_000}
    credited.update({asset: 1_000 + index for index, asset in enumerate(harness.token_assets)})
    for asset, amount in credited.items():
        await harness.credit(wallet, asset, amount)
    expected = await harness.read_point_at_finality()
    adapter = harness.adapter()

    snapshot = await take(adapter, [wallet])

    assert (snapshot.read_point.height, snapshot.read_point.block_hash) == (
        expected.height,
        expected.block_hash,
    )
    assert snapshot.read_point.timestamp == expected.timestamp
    assert {k: v for k, v in amounts_of(snapshot, wallet).items() if v} == credited
    assert (snapshot.chain, snapshot.caip2) == (adapter.chain, adapter.caip2)
    assert snapshot.endpoint == harness.node_url
    assert snapshot.request_count >= 1
    assert snapshot.issues == ()


async def test_a_credit_after_the_read_point_is_not_seen(harness: AdapterHarness) -> None:
    wallet = await harness.new_wallet()
    asset = harness.token_assets[0]
    await harness.credit(wallet, asset, 500)
    await harness.credit_unfinalized(wallet, asset, 250)

    snapshot = await take(harness.adapter(), [wallet])

    assert amounts_of(snapshot, wallet).get(asset) == 500


async def test_a_dead_first_endpoint_fails_over_to_the_second(harness: AdapterHarness) -> None:
    wallet = await harness.new_wallet()
    await harness.credit(wallet, harness.native_asset, 123_456)
    adapter = harness.adapter((harness.dead_url, harness.node_url))

    snapshot = await take(adapter, [wallet])

    assert snapshot.endpoint == harness.node_url
    assert amounts_of(snapshot, wallet)[harness.native_asset] == 123_456
    health = adapter.endpoint_health
    assert health[harness.dead_url].failures >= 1
    assert health[harness.dead_url].successes == 0
    assert health[harness.dead_url].last_error
    assert health[harness.node_url].successes >= 1
    assert health[harness.node_url].failures == 0


async def test_a_garbage_first_endpoint_fails_over_to_the_second(harness: AdapterHarness) -> None:
    wallet = await harness.new_wallet()
    await harness.credit(wallet, harness.token_assets[-1], 99)
    adapter = harness.adapter((harness.garbage_url, harness.node_url))

    snapshot = await take(adapter, [wallet])

    assert snapshot.endpoint == harness.node_url
    assert amounts_of(snapshot, wallet)[harness.token_assets[-1]] == 99
    assert adapter.endpoint_health[harness.garbage_url].failures >= 1


async def test_a_garbage_response_raises_a_clear_adapter_error_and_returns_nothing(
    harness: AdapterHarness,
) -> None:
    wallet = await harness.new_wallet()
    adapter = harness.adapter((harness.garbage_url,))
    result: ChainSnapshot | None = None

    with pytest.raises(AdapterError) as raised:
        result = await take(adapter, [wallet])

    assert result is None
    message = str(raised.value)
    assert "\n" not in message
    assert adapter.chain in message
    assert harness.garbage_url in message


async def test_every_endpoint_dead_raises_an_adapter_error_naming_them(
    harness: AdapterHarness,
) -> None:
    adapter = harness.adapter((harness.dead_url,))

    with pytest.raises(AdapterError) as raised:
        await take(adapter, [await harness.new_wallet()])

    assert adapter.chain in str(raised.value)
    assert harness.dead_url in str(raised.value)


async def test_rechecking_heights_read_before_confirms_them_while_the_chain_is_unchanged(
    harness: AdapterHarness,
) -> None:
    """Adapters that re-check stored heads (EVM, Solana) answer for the asked heights only and
    never contradict a chain that did not change; EVM does it inside the pin's batch, at no
    extra request."""
    wallet = await harness.new_wallet()
    adapter = harness.adapter()
    try:
        first = await adapter.snapshot([wallet])
        if not isinstance(adapter, HeadRechecking):
            assert harness.family == "hyperliquid"  # no blocks to re-check
            return
        again = await adapter.snapshot_rechecking([wallet], [first.read_point.height])
        plain = await adapter.snapshot([wallet])
    finally:
        await adapter.aclose()
    assert {check.height for check in again.head_checks} <= {first.read_point.height}
    for check in again.head_checks:
        assert not check.skipped
        assert check.block_hash in (None, first.read_point.block_hash)
    assert plain.head_checks == ()
    if harness.family == "evm":
        assert again.head_checks == (
            HeadCheck(first.read_point.height, first.read_point.block_hash),
        )
        assert again.request_count == plain.request_count
        assert again.read_point.parent_hash is not None
