"""Bad input from a real (local) info server: a number where a string is expected, an unknown
coin, a negative size on a long's line, an HTML error page, a 429 storm. The line or account is
skipped and recorded, or the poll fails with one line naming the endpoint; never a crash, never
a float in a stored amount."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hl_world import ALICE, BOB, adapter, assert_no_float, closed_url, control, demo_venue, human

from chains.base import AdapterError, Address, ChainSnapshot
from chains.hyperliquid.adapter import HyperliquidAdapter


async def poll(hl: HyperliquidAdapter, *, close: bool = True) -> ChainSnapshot:
    try:
        return await hl.snapshot([ALICE, BOB])
    finally:
        if close:
            await hl.aclose()


def issues_of(snapshot: ChainSnapshot) -> dict[str, str]:
    return {issue.subject: issue.message for issue in snapshot.issues}


@pytest.mark.parametrize(
    ("corruption", "expected"),
    [
        ("number_for_string", "szi: expected a decimal string, got the number 2.0"),
        ("flipped_size", "size -2.0 disagrees with its pnl"),
        ("unknown_leverage", "leverage.type: 'long' is neither cross nor isolated"),
    ],
)
async def test_a_bad_position_line_is_skipped_and_recorded(corruption: str, expected: str) -> None:
    with demo_venue() as venue:
        venue.world.account(ALICE).corruption = corruption  # type: ignore[assignment]
        snapshot = await poll(adapter(venue.url))

    message = issues_of(snapshot)[f"{ALICE}:ETH"]
    assert message.startswith("perp position skipped: ") and expected in message
    alice_markets = {p.market for p in snapshot.positions if p.account == ALICE}
    assert alice_markets == {"HYPE|isolated|imr=0.2|mmr=0.05", "cash"}
    # The skipped ETH line's value stays in the cash (cross accountValue minus counted pnl).
    cash = next(p for p in snapshot.positions if p.account == ALICE and p.market == "cash")
    assert human(cash.amount_raw, cash.decimals) == Decimal(24700)
    assert {p.account for p in snapshot.positions} == {ALICE, BOB}
    assert_no_float(snapshot)


async def test_an_unknown_coin_is_skipped_and_recorded() -> None:
    with demo_venue() as venue:
        venue.world.open_position(BOB, "BTC", Decimal("0.01"), Decimal(95000), 10)
        snapshot = await poll(adapter(venue.url))

    assert issues_of(snapshot)[f"{BOB}:BTC"] == "unknown coin 'BTC': perp position skipped"
    assert [p.asset for p in snapshot.positions if p.account == BOB] == ["ETH", "USDC"]


async def test_a_summary_number_refuses_the_account_which_keeps_its_last_lines() -> None:
    with demo_venue() as venue:
        hl = adapter(venue.url)
        try:
            before = await poll(hl, close=False)
            venue.world.account(BOB).corruption = "number_in_summary"
            after = await poll(hl, close=False)
        finally:
            await hl.aclose()

    message = issues_of(after)[BOB]
    assert message.startswith("not read this poll (response refused: clearinghouseState.")
    assert "marginSummary.accountValue: expected a decimal string" in message
    assert message.endswith("are kept")
    kept = [p for p in after.positions if p.account == BOB]
    assert kept == [p for p in before.positions if p.account == BOB]
    assert_no_float(after)


async def test_an_html_error_page_fails_over_to_the_next_endpoint() -> None:
    with demo_venue() as broken, demo_venue() as good:
        control(broken, op="fail", mode="html")
        hl = adapter(broken.url, good.url)
        snapshot = await poll(hl)

    assert snapshot.endpoint == good.url and snapshot.issues == ()
    health = hl.endpoint_health[broken.url]
    assert health.failures == 1 and health.successes == 0
    assert "answered an HTML page" in (health.last_error or "")


async def test_an_html_page_on_the_only_endpoint_fails_the_poll_in_one_line() -> None:
    with demo_venue() as broken:
        control(broken, op="fail", mode="html")
        with pytest.raises(AdapterError) as raised:
            await poll(adapter(broken.url))

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("hl-test: every endpoint failed: ")
    assert f"{broken.url}: metaAndAssetCtxs: answered an HTML page, not JSON" in message


async def test_html_for_the_account_requests_leaves_the_accounts_to_the_next_endpoint() -> None:
    with demo_venue() as broken, demo_venue() as good:
        control(broken, op="fail", mode="html", types=["clearinghouseState"])
        snapshot = await poll(adapter(broken.url, good.url))

    assert snapshot.endpoint == broken.url  # its metaAndAssetCtxs was good
    assert snapshot.issues == ()
    assert {p.account for p in snapshot.positions} == {ALICE, BOB}


async def test_a_502_is_retried_then_failed_over() -> None:
    with demo_venue() as broken, demo_venue() as good:
        control(broken, op="fail", mode="http502")
        hl = adapter(broken.url, good.url)
        snapshot = await poll(hl)

    assert snapshot.endpoint == good.url
    assert hl.endpoint_health[broken.url].failures == 2  # the request and its one retry
    assert hl.endpoint_health[broken.url].last_error == "metaAndAssetCtxs: HTTP 502"


async def test_a_429_storm_fails_the_poll_cleanly_naming_the_endpoint() -> None:
    with demo_venue() as storm:
        control(storm, op="fail", mode="429")
        started = time.perf_counter()
        with pytest.raises(AdapterError) as raised:
            await poll(adapter(storm.url))
        elapsed = time.perf_counter() - started

    message = str(raised.value)
    assert "\n" not in message
    assert f"{storm.url}: metaAndAssetCtxs: HTTP 429 rate limited" in message
    assert elapsed < 5  # backs off, does not hang


async def test_a_429_storm_on_account_reads_keeps_their_last_lines() -> None:
    with demo_venue() as storm:
        hl = adapter(storm.url)
        try:
            before = await poll(hl, close=False)
            control(storm, op="fail", mode="429", types=["clearinghouseState"])
            after = await poll(hl, close=False)
        finally:
            await hl.aclose()
        calls = control(storm, op="stats")["calls"]

    issues = issues_of(after)
    assert issues["hl-test"].startswith("poll cut short by the weight budget (or 429s): 2 of 2")
    for account in (ALICE, BOB):
        assert issues[account].startswith(f"not read this poll (rate limited by {storm.url}")
        assert issues[account].endswith("are kept")
    assert after.positions == before.positions and after.balances == before.balances
    assert hl.endpoint_health[storm.url].failures >= 1
    assert calls["metaAndAssetCtxs"] == 2
    assert_no_float(after)


async def test_a_dead_endpoint_fails_over_and_every_dead_one_is_named() -> None:
    dead = closed_url()
    with demo_venue() as good:
        snapshot = await poll(adapter(dead, good.url))
    assert snapshot.endpoint == good.url

    with pytest.raises(AdapterError) as raised:
        await poll(adapter(dead))
    assert f"{dead}: metaAndAssetCtxs: transport failed (ConnectError" in str(raised.value)


async def test_a_wallet_that_is_not_an_evm_address_is_skipped_and_recorded() -> None:
    with demo_venue() as venue:
        hl = adapter(venue.url)
        try:
            snapshot = await hl.snapshot(
                [ALICE, Address("9FjaYwjUghsWZAEVy3d8kWHYxGGc6RivgdohpcpeBv2K")]
            )
        finally:
            await hl.aclose()
    (issue,) = snapshot.issues
    assert issue.subject.startswith("9Fja") and issue.message.startswith("not an EVM address")
