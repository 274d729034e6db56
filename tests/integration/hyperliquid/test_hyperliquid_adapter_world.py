"""The Hyperliquid adapter against the local world over real HTTP: what it reads, the read
point, account modes, the weight budget (never exceeded; a poll cut short says so and unread
accounts keep their last lines, marked older)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
from hl_world import ALICE, BOB, START_MS, adapter, assert_no_float, control, demo_venue, human

from aggregator.venues.hyperliquid import cross_maintenance_margin, venue_positions
from chains.base import Address
from chains.hyperliquid.decoders import decode_clearinghouse_state, parse_body
from chains.hyperliquid.localnet import seed_synthetic_users


async def test_the_demo_books_are_read_exactly_at_the_response_time() -> None:
    with demo_venue() as venue:
        hl = adapter(venue.url)
        try:
            snapshot = await hl.snapshot([ALICE, BOB])
        finally:
            await hl.aclose()

    point = snapshot.read_point
    assert (point.height, point.block_hash, point.timestamp, point.finality) == (
        START_MS,
        f"hypercore-time:{START_MS}",
        START_MS // 1000,
        "latest",
    )
    assert snapshot.caip2 == "hypercore:localnet" and snapshot.issues == ()
    # metaAndAssetCtxs + 2 * (userAbstraction + clearinghouseState + spotClearinghouseState)
    assert snapshot.request_count == 7
    lines = {(p.account, p.asset, p.market): p for p in snapshot.positions}
    eth = lines[(ALICE, "ETH", "ETH|cross|imr=0.2|mmr=0.02")]
    assert (human(eth.amount_raw, eth.decimals), eth.entry_price) == (Decimal(2), Decimal(2950))
    hype = lines[(ALICE, "HYPE", "HYPE|isolated|imr=0.2|mmr=0.05")]
    assert human(hype.amount_raw, hype.decimals) == Decimal(50)
    cash = lines[(ALICE, "USDC", "cash")]
    assert human(cash.amount_raw, cash.decimals) == Decimal(24600)  # 25,000 - 400 isolated
    bob_cash = lines[(BOB, "USDC", "cash")]
    assert human(bob_cash.amount_raw, bob_cash.decimals) == Decimal(1500)
    spot = {(b.account, b.asset): human(b.amount_raw, b.decimals) for b in snapshot.balances}
    assert spot == {(ALICE, "USDC"): 1500, (ALICE, "HYPE"): 20, (BOB, "USDC"): 100}
    (hype_price,) = snapshot.prices
    assert (hype_price.asset, hype_price.price, hype_price.publish_time) == (
        "HYPE",
        Decimal(40),
        START_MS // 1000,
    )
    assert_no_float(snapshot)


async def test_the_venue_math_reproduces_the_worlds_own_maintenance_margin() -> None:
    with demo_venue() as venue:
        venue.world.set_mark("ETH", Decimal("2931.7"))
        body = {"type": "clearinghouseState", "user": BOB.lower()}
        async with httpx.AsyncClient() as client:
            answer = await client.post(venue.url, json=body)
    state = decode_clearinghouse_state(parse_body(answer.content))

    ours = cross_maintenance_margin(venue_positions(state.positions))

    assert state.cross_maintenance_margin_used == Decimal("586.34")  # 29,317 / 50
    assert ours == state.cross_maintenance_margin_used


async def test_a_unified_account_is_counted_from_its_spot_balances() -> None:
    with demo_venue() as venue:
        venue.world.account(BOB).abstraction = "unifiedAccount"
        hl = adapter(venue.url)
        try:
            snapshot = await hl.snapshot([BOB])
        finally:
            await hl.aclose()

    assert [p.market for p in snapshot.positions] == ["ETH|cross|imr=0.05|mmr=0.02"]
    (usdc,) = snapshot.balances
    assert (usdc.asset, human(usdc.amount_raw, usdc.decimals)) == ("USDC", Decimal(100))


async def test_account_modes_are_read_once_then_cached() -> None:
    with demo_venue() as venue:
        hl = adapter(venue.url)
        try:
            first = await hl.snapshot([ALICE, BOB])
            second = await hl.snapshot([ALICE, BOB])
        finally:
            await hl.aclose()
        calls = control(venue, op="stats")["calls"]

    assert (first.request_count, second.request_count) == (7, 5)
    assert calls["userAbstraction"] == 2 and calls["clearinghouseState"] == 4


async def test_a_poll_cut_short_by_the_budget_says_so_and_keeps_the_unread_lines() -> None:
    # Budget: metaAndAssetCtxs (20) and two accounts of 24 (mode + two states) per 0.4 s, the
    # same limit on the server: the adapter must never make it answer 429.
    with demo_venue(weight_limit=68, window_seconds=0.4) as venue:
        users = [ALICE, BOB, *(Address(u) for u in seed_synthetic_users(venue.world, 2))]
        hl = adapter(
            venue.url, weight_per_minute=68, budget_window_seconds=0.4, budget_wait_seconds=0
        )
        try:
            first = await hl.snapshot(users)
            venue.world.advance(5_000)
            await asyncio.sleep(0.45)
            second = await hl.snapshot(users)
        finally:
            await hl.aclose()
        stats = control(venue, op="stats")

    assert stats["rejected"] == 0
    assert first.issues[0].subject == "hl-test"
    assert first.issues[0].message.startswith(
        "poll cut short by the weight budget (or 429s): 2 of 4 accounts not read"
    )
    unread_first = {i.subject for i in first.issues[1:]}
    assert unread_first == set(users[2:])
    assert all("no earlier data" in i.message for i in first.issues[1:])
    assert {p.account for p in first.positions} == {ALICE, BOB}
    # Second poll: the two never read go first; alice and bob are now the ones left over.
    kept = {i.subject: i.message for i in second.issues[1:]}
    assert set(kept) == {ALICE, BOB}
    assert all("2025-11-24T16:00:00.000+00:00 are kept" in m for m in kept.values())
    assert {p.account for p in second.positions} == set(users)
    assert second.read_point.height == START_MS + 5_000
    assert second.read_point.timestamp == START_MS // 1000  # the oldest data it holds
    assert second.extra["accounts_kept_from_earlier"] == "2"


async def test_a_poll_waits_for_budget_that_frees_soon_and_reads_everyone() -> None:
    # The same budget, but a poll may wait up to 2 s for room: it paces itself instead.
    with demo_venue(weight_limit=68, window_seconds=0.4) as venue:
        users = [ALICE, BOB, *(Address(u) for u in seed_synthetic_users(venue.world, 4))]
        hl = adapter(venue.url, weight_per_minute=68, budget_window_seconds=0.4)
        try:
            snapshot = await hl.snapshot(users)
        finally:
            await hl.aclose()
        stats = control(venue, op="stats")

    assert snapshot.issues == ()
    assert {p.account for p in snapshot.positions} == set(users)
    assert stats["rejected"] == 0  # 20 + 6 * 24 = 164 weight through a 68-per-0.4 s limit
