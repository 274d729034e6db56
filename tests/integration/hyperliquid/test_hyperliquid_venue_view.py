"""The venue view over real HTTP against the local Hyperliquid world: a polled snapshot carries
one `VenueAccount` per wallet with perps, read from the same `clearinghouseState` as its lines,
and `aggregator.venues.hyperliquid_rules` measures it to the numbers the server sent
(`reported`: cross accountValue, crossMaintenanceMarginUsed, totalMarginUsed, isolated
marginUsed, liquidationPx) to 1e-6 relative, before and after the mark moves past bob's
liquidation price."""

from __future__ import annotations

from decimal import Decimal

from hl_world import ALICE, BOB, START_MS, adapter, control, demo_venue

from aggregator.venues.assess import ReadPoint, assess
from aggregator.venues.hyperliquid_rules import RULES, liquidation_prices
from chains.base import Address, ChainSnapshot, VenueAccount
from chains.hyperliquid.localnet import LocalHyperliquid

CAROL = Address("0x00000000000000000000000000000000000000c0")
REL = Decimal("1e-6")


def close(ours: Decimal, theirs: Decimal) -> bool:
    return abs(ours - theirs) <= REL * max(abs(theirs), Decimal("1e-12"))


async def poll(venue: LocalHyperliquid, wallets: list[Address]) -> ChainSnapshot:
    hl = adapter(venue.url)
    try:
        return await hl.snapshot(wallets)
    finally:
        await hl.aclose()


def by_wallet(snapshot: ChainSnapshot) -> dict[str, VenueAccount]:
    return {account.account: account for account in snapshot.venue_accounts}


def assert_measured_as_reported(account: VenueAccount) -> None:
    measure = RULES.measure(account, {})
    theirs = account.reported
    assert measure.extra is not None
    assert close(measure.collateral, Decimal(theirs["cross_account_value"]))
    assert close(measure.requirement, Decimal(theirs["cross_maintenance_margin_used"]))
    assert close(
        Decimal(measure.extra["cross_margin_used"]), Decimal(theirs["cross_total_margin_used"])
    )
    buckets = Decimal(0)
    for asset in account.assets:
        if asset.params["leverage_type"] == "isolated":
            used = Decimal(measure.extra[f"isolated:{asset.market}:margin_used"])
            assert close(used, Decimal(theirs[f"margin_used:{asset.market}"]))
            buckets += used
    assert close(measure.collateral + buckets, Decimal(theirs["account_value"]))
    for coin, price in liquidation_prices(account).items():
        key = f"liquidation_px:{coin}"
        if key in theirs:
            assert price is not None and close(price, Decimal(theirs[key])), coin
        else:
            assert price is None, coin


async def test_a_polled_snapshot_carries_each_perp_wallets_venue_account() -> None:
    with demo_venue() as venue:
        venue.world.credit_spot(CAROL, "USDC", Decimal("10"))  # spot only: no venue account
        snapshot = await poll(venue, [ALICE, BOB, CAROL])

    accounts = by_wallet(snapshot)
    assert set(accounts) == {ALICE, BOB}
    perp_venues = {p.venue for p in snapshot.positions if p.kind == "perp"}
    for wallet, account in accounts.items():
        assert (account.account, account.rules, account.problem) == (wallet, "hyperliquid", None)
        assert {account.venue} == perp_venues
        assert account.params["time_ms"] == str(START_MS)
        lines = {p.asset: p for p in snapshot.positions if p.account == wallet and p.kind == "perp"}
        assert {a.asset for a in account.assets} == set(lines)
        for asset in account.assets:  # the same size as the perp line, in base units
            line = lines[asset.asset]
            assert Decimal(asset.amount_raw).scaleb(-asset.decimals) == Decimal(
                line.amount_raw
            ).scaleb(-line.decimals)
        RULES.check(account)
        assert_measured_as_reported(account)
    alice = {a.asset: a for a in accounts[ALICE].assets}
    assert alice["HYPE"].params["leverage_type"] == "isolated"
    assert alice["ETH"].params["margin_tier.0.max_leverage"] == "25"
    assert alice["ETH"].price == Decimal(3000)


async def test_bob_near_liquidation_is_measured_as_the_venue_counts_him() -> None:
    with demo_venue() as venue:
        before = by_wallet(await poll(venue, [BOB]))[BOB]
        liquidation = Decimal(before.reported["liquidation_px:ETH"])
        control(venue, op="set_mark", coin="ETH", mark=str(liquidation - 1))
        control(venue, op="advance", ms=1_000)
        after = by_wallet(await poll(venue, [BOB]))[BOB]

    measured = RULES.measure(before, {})
    assert measured.metric is not None and 1 < measured.metric < 2  # 1,000 / 600
    assert not measured.liquidatable
    assert_measured_as_reported(before)
    # the price the rules give liquidates bob by the venue's own margin: zero there
    ours = liquidation_prices(before)["ETH"]
    assert ours is not None and close(ours, liquidation)
    assert abs(RULES.measure(before, {"ETH": ours}).margin) < Decimal("1e-12")

    shocked = RULES.measure(after, {})
    assert after.params["time_ms"] == str(START_MS + 1_000)
    assert shocked.liquidatable and shocked.metric is not None and shocked.metric < 1
    assert_measured_as_reported(after)


async def test_the_venue_line_solves_bobs_liquidation_price_on_the_same_margin() -> None:
    with demo_venue() as venue:
        snapshot = await poll(venue, [BOB])
    account = by_wallet(snapshot)[BOB]
    point = snapshot.read_point

    line = assess(
        account,
        snapshot.caip2,
        f"{snapshot.caip2}:{BOB}",
        ReadPoint(point.height, point.block_hash, "2025-11-24T16:00:00Z"),
        stable=frozenset({"USDC"}),
        warning_at=Decimal(2),
    )

    assert (line.status, line.problem, line.metric) == (
        "warning",
        None,
        "account_value_to_maintenance",
    )
    assert line.value == RULES.measure(account, {}).metric
    solved = line.liquidation_prices["ETH"]
    assert solved is not None
    assert close(solved, Decimal(account.reported["liquidation_px:ETH"]))
