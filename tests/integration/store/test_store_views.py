"""The operator views answer in human units and show what is latest."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from store_builders import ALICE_EVM, BOB_EVM, T0, eth, rows, snapshot, status, usdc

from aggregator.store.database import Database
from aggregator.store.observed.observations import ShardKey
from aggregator.store.refs import ChainRef
from aggregator.store.repositories import (
    add_user,
    link_wallet,
    publish_statuses,
    record_poll_failure,
    record_snapshot,
    sync_reference_data,
)
from chains.base import LineIssue, Position


async def _setup(db: Database) -> dict[str, int]:
    async with db.session() as session:
        alice = await add_user(session, "alice")
        bob = await add_user(session, "bob")
        await link_wallet(session, alice, "ethereum", ALICE_EVM)
        await link_wallet(session, bob, "ethereum", BOB_EVM)
        await sync_reference_data(
            session,
            [ChainRef("ethereum", "eip155:1", "evm"), ChainRef("base", "eip155:8453", "evm")],
            [],
            [],
            [],
        )
    return {ALICE_EVM: alice, BOB_EVM: bob}


async def test_user_collateral_shows_latest_amounts_in_human_units(db: Database) -> None:
    owners = await _setup(db)
    await record_snapshot(db, snapshot(99, balances=(usdc(ALICE_EVM, 1),)), owners, T0, 10)
    borrow = Position(
        account=BOB_EVM,
        venue="aave_v3:main",
        asset="ETH",
        kind="borrow",
        amount_raw=-2_500_000_000_000_000_000,
        decimals=18,
    )
    await record_snapshot(
        db,
        snapshot(
            100,
            balances=(usdc(ALICE_EVM, 1_234_567), eth(ALICE_EVM, 2**255), eth(BOB_EVM, 0)),
            positions=(borrow,),
        ),
        owners,
        T0 + timedelta(seconds=12),
        10,
    )
    collateral = await rows(
        db,
        "SELECT user_name, venue, kind, asset, amount_raw, decimals, amount, height "
        "FROM v_user_collateral ORDER BY user_name, kind, asset",
    )
    assert collateral == [
        {
            "user_name": "alice",
            "venue": "wallet",
            "kind": "balance",
            "asset": "ETH",
            "amount_raw": Decimal(2**255),
            "decimals": 18,
            # Exact: 2^255 / 10^18, every digit kept.
            "amount": Decimal(
                "57896044618658097711785492504343953926634992332820282019728.792003956564819968"
            ),
            "height": 100,
        },
        {
            "user_name": "alice",
            "venue": "wallet",
            "kind": "balance",
            "asset": "USDC",
            "amount_raw": Decimal(1_234_567),
            "decimals": 6,
            "amount": Decimal("1.234567"),
            "height": 100,
        },
        {
            "user_name": "bob",
            "venue": "wallet",
            "kind": "balance",
            "asset": "ETH",
            "amount_raw": Decimal(0),
            "decimals": 18,
            "amount": Decimal(0),
            "height": 100,
        },
        {
            "user_name": "bob",
            "venue": "aave_v3:main",
            "kind": "borrow",
            "asset": "ETH",
            "amount_raw": Decimal(-2_500_000_000_000_000_000),
            "decimals": 18,
            "amount": Decimal("-2.5"),
            "height": 100,
        },
    ]
    assert str(collateral[1]["amount"]) == "1.234567"


async def test_user_margin_lists_every_user_with_the_published_numbers(db: Database) -> None:
    owners = await _setup(db)
    async with db.session() as session:
        await publish_statuses(
            session, [status(owners[ALICE_EVM], status="warning", equity="1234.5")]
        )
    margin = await rows(
        db,
        "SELECT user_name, status, equity_usd, health_factor, wallet_count, age IS NOT NULL "
        "AS has_age FROM v_user_margin ORDER BY user_id",
    )
    assert margin == [
        {
            "user_name": "alice",
            "status": "warning",
            "equity_usd": Decimal("1234.5"),
            "health_factor": Decimal("2.5"),
            "wallet_count": 1,
            "has_age": True,
        },
        # No status yet: still listed, so operators see who was never published.
        {
            "user_name": "bob",
            "status": None,
            "equity_usd": None,
            "health_factor": None,
            "wallet_count": 1,
            "has_age": False,
        },
    ]


async def test_chain_freshness_and_poll_errors(db: Database) -> None:
    owners = await _setup(db)
    await record_snapshot(
        db,
        snapshot(100, issues=(LineIssue("0xfeed", "aggregator reverted"),)),
        owners,
        T0,
        10,
    )
    await record_poll_failure(
        db, "ethereum", T0 + timedelta(seconds=15), 3000, "all endpoints timed out", "http://a"
    )
    await record_poll_failure(db, "solana", T0, 5, "connection refused")

    freshness = await rows(
        db,
        "SELECT chain, caip2, height, last_poll_ok, last_error, failures_since_head, "
        "data_age > interval '0' AS aged FROM v_chain_freshness ORDER BY chain",
    )
    assert freshness == [
        {
            "chain": "base",
            "caip2": "eip155:8453",
            "height": None,
            "last_poll_ok": None,
            "last_error": None,
            "failures_since_head": 0,
            "aged": None,
        },
        {
            "chain": "ethereum",
            "caip2": "eip155:1",
            "height": 100,
            "last_poll_ok": False,
            "last_error": "all endpoints timed out",
            "failures_since_head": 1,
            "aged": True,
        },
        {
            "chain": "solana",  # polled but not in reference data
            "caip2": None,
            "height": None,
            "last_poll_ok": False,
            "last_error": "connection refused",
            "failures_since_head": 1,
            "aged": None,
        },
    ]

    errors = await rows(
        db, "SELECT chain, kind, subject, message FROM v_poll_errors ORDER BY poll_run_id"
    )
    assert errors == [
        {
            "chain": "ethereum",
            "kind": "line_issue",
            "subject": "0xfeed",
            "message": "aggregator reverted",
        },
        {
            "chain": "ethereum",
            "kind": "poll_failed",
            "subject": "ethereum",
            "message": "all endpoints timed out",
        },
        {
            "chain": "solana",
            "kind": "poll_failed",
            "subject": "solana",
            "message": "connection refused",
        },
    ]


async def test_shard_freshness_shows_the_failing_shard_the_chain_view_hides(db: Database) -> None:
    owners = await _setup(db)
    both = {ShardKey(0, 2): 100, ShardKey(1, 2): 100}
    for shard, height in both.items():
        await record_snapshot(db, snapshot(height), owners, T0, 10, shard=shard)
    # Shard 1/2 then fails, while shard 0/2 goes on reading newer blocks; shard 0/4 (another
    # split) never had a good poll.
    await record_poll_failure(
        db, "ethereum", T0 + timedelta(seconds=5), 3000, "upstream 500", shard=ShardKey(1, 2)
    )
    await record_poll_failure(db, "ethereum", T0, 5, "connection refused", shard=ShardKey(0, 4))
    await record_snapshot(
        db, snapshot(101), owners, T0 + timedelta(seconds=12), 10, shard=ShardKey(0, 2)
    )

    chain = await rows(
        db, "SELECT height, failures_since_head FROM v_chain_freshness WHERE chain = 'ethereum'"
    )
    assert chain == [{"height": 101, "failures_since_head": 0}]  # the newest head, any shard
    shards = await rows(
        db,
        "SELECT shard_index, shard_count, height, last_poll_ok, last_error, failures_since_head "
        "FROM v_shard_freshness WHERE chain = 'ethereum' ORDER BY shard_count, shard_index",
    )
    assert shards == [
        {
            "shard_index": 0,
            "shard_count": 2,
            "height": 101,
            "last_poll_ok": True,
            "last_error": None,
            "failures_since_head": 0,
        },
        {
            "shard_index": 1,
            "shard_count": 2,
            "height": 100,
            "last_poll_ok": False,
            "last_error": "upstream 500",
            "failures_since_head": 1,
        },
        {
            "shard_index": 0,
            "shard_count": 4,
            "height": None,
            "last_poll_ok": False,
            "last_error": "connection refused",
            "failures_since_head": 1,
        },
    ]
