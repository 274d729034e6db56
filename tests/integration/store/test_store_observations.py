"""Poll results in Postgres: one transaction per snapshot, last good data survives failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.exc import DataError, IntegrityError
from store_builders import (
    ALICE_EVM,
    BLOCK_TIME_0,
    BOB_EVM,
    T0,
    count,
    eth,
    eth_price,
    rows,
    snapshot,
    usdc,
)

from aggregator.store.database import Database
from aggregator.store.observed.observations import UNLINKED_ACCOUNT
from aggregator.store.repositories import (
    ChainObservations,
    add_user,
    latest_observations,
    link_wallet,
    price_history,
    prune_observations,
    record_poll_failure,
    record_snapshot,
)
from chains.base import Address, LineIssue, Position, PriceObservation, TokenBalance

HUGE = 2**255 + 12345  # beyond int64 and float precision; fits NUMERIC(78,0)


async def _two_users(db: Database) -> dict[str, int]:
    async with db.session() as session:
        alice = await add_user(session, "alice")
        bob = await add_user(session, "bob")
        await link_wallet(session, alice, "ethereum", ALICE_EVM)
        await link_wallet(session, bob, "ethereum", BOB_EVM)
    return {ALICE_EVM: alice, BOB_EVM: bob}


async def test_record_snapshot_stores_every_line_exactly(db: Database) -> None:
    owners = await _two_users(db)
    stranger = Address("0x3333333333333333333333333333333333333333")
    borrow = Position(
        account=BOB_EVM,
        venue="aave_v3:main",
        asset="USDC",
        kind="borrow",
        amount_raw=-2_500_000_000,
        decimals=6,
        market="0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
    )
    perp = Position(
        account=ALICE_EVM,
        venue="drift",
        asset="ETH",
        kind="perp",
        amount_raw=-1_500_000_000,
        decimals=9,
        entry_price=Decimal("3012.123456789"),
        market="perp:2",
    )
    snap = snapshot(
        100,
        # The lowercase spelling still finds the EIP-55 owner.
        balances=(
            eth(ALICE_EVM, HUGE),
            usdc(Address(BOB_EVM.lower()), 1_234_567),
            usdc(stranger, 5),
        ),
        positions=(borrow, perp),
        prices=(eth_price("3123.45678901234567890123", BLOCK_TIME_0 + 1199),),
        issues=(LineIssue("0xfeed", "aggregator reverted"),),
    )

    poll_run_id = await record_snapshot(db, snap, owners, T0, 250)

    latest = (await latest_observations_of(db))["ethereum"]
    assert latest.poll_run_id == poll_run_id
    assert latest.read_point == snap.read_point
    assert latest.observed_at == T0 + timedelta(milliseconds=250)
    assert [(b.user_id, b.balance) for b in latest.balances] == [
        (owners[ALICE_EVM], eth(ALICE_EVM, HUGE)),
        (owners[BOB_EVM], usdc(Address(BOB_EVM.lower()), 1_234_567)),
    ]
    assert [(p.user_id, p.position) for p in latest.positions] == [
        (owners[BOB_EVM], borrow),
        (owners[ALICE_EVM], perp),
    ]
    assert latest.prices == snap.prices
    assert latest.failures_since == 0 and latest.last_failure_at is None

    [run] = await rows(db, "SELECT * FROM poll_runs")
    assert run["ok"] is True
    assert run["height"] == 100
    assert run["request_count"] == 3
    assert run["duration_ms"] == 250
    assert run["endpoint"] == "http://127.0.0.1:8545"
    assert run["issues"] == [
        {"subject": "0xfeed", "message": "aggregator reverted"},
        {"subject": stranger, "message": UNLINKED_ACCOUNT},
    ]


async def latest_observations_of(db: Database) -> dict[str, ChainObservations]:
    async with db.session() as session:
        return await latest_observations(session)


@pytest.mark.parametrize(
    ("bad_balance", "error"),
    [
        (usdc(ALICE_EVM, -1), IntegrityError),  # CHECK amount_raw >= 0
        (usdc(ALICE_EVM, 10**78), DataError),  # beyond NUMERIC(78,0)
    ],
    ids=["negative-balance", "overflowing-amount"],
)
async def test_a_failure_mid_write_leaves_the_previous_observations_intact(
    db: Database, bad_balance: TokenBalance, error: type[Exception]
) -> None:
    owners = await _two_users(db)
    good = snapshot(100, balances=(usdc(ALICE_EVM, 1_000_000), eth(BOB_EVM, 7)))
    first_run = await record_snapshot(db, good, owners, T0, 100)

    # The bad line comes after good lines and a price: all of them must vanish with it.
    bad = snapshot(
        101,
        balances=(usdc(ALICE_EVM, 2_000_000), eth(BOB_EVM, 8), bad_balance),
        prices=(eth_price("3000", BLOCK_TIME_0),),
    )
    with pytest.raises(error):
        await record_snapshot(db, bad, owners, T0 + timedelta(seconds=15), 100)

    assert await count(db, "poll_runs") == 1
    assert await count(db, "chain_heads") == 1
    assert await count(db, "balances") == 2
    assert await count(db, "prices") == 0
    latest = (await latest_observations_of(db))["ethereum"]
    assert latest.poll_run_id == first_run
    assert latest.read_point.height == 100
    assert sorted(b.balance.amount_raw for b in latest.balances) == [7, 1_000_000]


async def test_latest_observations_keep_the_last_good_head_after_failed_polls(
    db: Database,
) -> None:
    owners = await _two_users(db)
    await record_snapshot(db, snapshot(100, balances=(usdc(ALICE_EVM, 1),)), owners, T0, 100)
    await record_snapshot(
        db,
        snapshot(7, chain="solana", balances=()),
        {},
        T0,
        80,
    )
    await record_poll_failure(
        db, "ethereum", T0 + timedelta(seconds=15), 3000, "all endpoints timed out", "http://a"
    )
    await record_poll_failure(
        db, "ethereum", T0 + timedelta(seconds=30), 2000, "HTTP 429 from http://b", "http://b"
    )

    observed = await latest_observations_of(db)
    ethereum = observed["ethereum"]
    assert ethereum.read_point.height == 100
    assert [b.balance.amount_raw for b in ethereum.balances] == [1]
    assert ethereum.failures_since == 2
    assert ethereum.superseded_by_failure is True
    assert ethereum.last_failure_at == T0 + timedelta(seconds=32)
    assert ethereum.last_failure_error == "HTTP 429 from http://b"
    assert observed["solana"].failures_since == 0  # failures are per chain

    # A later good poll supersedes both the old head and the failures.
    await record_snapshot(
        db, snapshot(103, balances=(usdc(ALICE_EVM, 2),)), owners, T0 + timedelta(seconds=45), 90
    )
    ethereum = (await latest_observations_of(db))["ethereum"]
    assert ethereum.read_point.height == 103
    assert [b.balance.amount_raw for b in ethereum.balances] == [2]
    assert (ethereum.failures_since, ethereum.last_failure_at) == (0, None)


async def test_a_chain_that_never_polled_well_is_absent(db: Database) -> None:
    await record_poll_failure(db, "base", T0, 10, "connection refused")
    assert await latest_observations_of(db) == {}
    [run] = await rows(db, "SELECT ok, error, height FROM poll_runs")
    assert run == {"ok": False, "error": "connection refused", "height": None}


async def test_naive_times_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await record_poll_failure(db, "base", datetime(2026, 1, 1), 10, "x")


async def test_price_history_has_valid_prices_once_per_publish_time(db: Database) -> None:
    owners = await _two_users(db)
    for height, prices in enumerate(
        [
            (eth_price("3000.10", BLOCK_TIME_0),),
            # The same oracle update read again by the next poll counts once.
            (eth_price("3000.10", BLOCK_TIME_0),),
            (eth_price("2999.90", BLOCK_TIME_0 + 60, valid=False),),
            (eth_price("3010.55", BLOCK_TIME_0 + 120),),
        ],
        start=100,
    ):
        await record_snapshot(db, snapshot(height, prices=prices), owners, T0, 10)
    async with db.session() as session:
        history = await price_history(session, "ETH", T0 - timedelta(hours=1))
        recent = await price_history(session, "ETH", T0 + timedelta(seconds=1))
        other = await price_history(session, "ETH", T0, source="pyth:nothing")
    start = datetime.fromtimestamp(BLOCK_TIME_0, UTC)
    assert history == [
        (start, Decimal("3000.10")),
        (start + timedelta(seconds=120), Decimal("3010.55")),
    ]
    assert recent == [(start + timedelta(seconds=120), Decimal("3010.55"))]
    assert other == []


async def test_prune_keeps_the_newest_heads_and_the_price_history(db: Database) -> None:
    owners = await _two_users(db)
    polled_at = datetime.now(UTC) - timedelta(minutes=10)  # within the default price retention
    for height in range(100, 105):
        await record_snapshot(
            db,
            snapshot(
                height,
                balances=(usdc(ALICE_EVM, height), eth(BOB_EVM, height)),
                prices=(eth_price(f"{3000 + height}", BLOCK_TIME_0 + height),),
            ),
            owners,
            polled_at + timedelta(seconds=height),
            10,
        )
        if height == 101:
            await record_poll_failure(db, "ethereum", polled_at, 10, "old failure")
    await record_poll_failure(db, "ethereum", polled_at, 10, "recent failure")

    async with db.session() as session:
        result = await prune_observations(session, keep_heads_per_chain=2)
    # Heads 100..102 go with their poll runs and the failure between 101 and 102.
    assert (result.heads, result.poll_runs, result.prices) == (3, 4, 0)
    assert await rows(db, "SELECT height FROM chain_heads ORDER BY height") == [
        {"height": 103},
        {"height": 104},
    ]
    assert await count(db, "balances") == 4
    assert await rows(db, "SELECT error FROM poll_runs WHERE NOT ok") == [
        {"error": "recent failure"}
    ]
    latest = (await latest_observations_of(db))["ethereum"]
    assert (latest.read_point.height, latest.failures_since) == (104, 1)
    async with db.session() as session:
        assert len(await price_history(session, "ETH", T0 - timedelta(days=1))) == 5

        # Old detached prices go once older than the retention.
        result = await prune_observations(session, 2, price_retention=timedelta(0))
    assert (result.heads, result.prices) == (0, 3)
    assert await count(db, "prices") == 2


async def test_prune_refuses_to_drop_the_latest_head(db: Database) -> None:
    async with db.session() as session:
        with pytest.raises(ValueError, match="at least 1"):
            await prune_observations(session, 0)


def test_price_observation_round_trip_keeps_invalid_reason() -> None:
    # Guard for the builder used above: an invalid price always carries its reason.
    price = eth_price("1", 0, valid=False)
    assert isinstance(price, PriceObservation) and price.invalid_reason == "stale"
