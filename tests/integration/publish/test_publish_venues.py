"""The venue view through a publish pass on a real Postgres: venue accounts recorded with a
poll (`record_snapshot`) are valued by their venues' rules into every status, listed by
`v_user_venues`, rewritten only when a venue line says something new, rendered in full on read
with liquidation prices and `binding`; a venue whose parameters are out of range says so and
never binds, and the rest of the status is published."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from aggregator.config import LoadedConfig, load_config
from aggregator.publish import publish
from aggregator.publish.documents import published_status
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.store.observed.observations import record_snapshot
from aggregator.store.published.status_reads import get_status
from chains.base import (
    Address,
    ChainSnapshot,
    Position,
    PriceObservation,
    ReadPoint,
    TokenBalance,
    VenueAccount,
    VenueAsset,
)
from tests.e2e.conftest import write_config

NOW = datetime.now(UTC).replace(microsecond=0)
ALICE = Address("0x" + "a1" * 20)
BOB = Address("0x" + "b0" * 20)
ETH = 10**18
USDC = 10**6
AAVE = "aave_v3:devnet"


def _config(tmp_path: Path) -> LoadedConfig:
    return load_config(write_config(tmp_path, {"a": ["http://127.0.0.1:9"]}))


def _aave(wallet: Address, weth: int, usdc_debt: int, eth_usd: str, threshold: int = 8250):
    params = {
        "ltv_bps": "8000",
        "liquidation_threshold_bps": str(threshold),
        "liquidation_bonus_bps": "10500",
        "usage_as_collateral": "true",
    }
    usdc = {**params, "ltv_bps": "7500", "liquidation_threshold_bps": "7800"}
    return VenueAccount(
        account=wallet,
        venue=AAVE,
        rules="aave_v3",
        assets=(
            VenueAsset("WETH", weth, 18, Decimal(eth_usd), params, "0xweth"),
            VenueAsset("USDC", -usdc_debt, 6, Decimal(1), usdc, "0xusdc"),
        ),
        params={"base_unit": "100000000", "revision": "v3-core"},
        reported={},
    )


def _snapshot(height: int, eth_usd: str, *, bad_threshold: bool = False) -> ChainSnapshot:
    publish_time = int(NOW.timestamp()) - 5
    lines = []
    venues = []
    for wallet, weth, debt in ((ALICE, 4 * ETH, 3_000 * USDC), (BOB, 10 * ETH, 24_000 * USDC)):
        lines.append(Position(wallet, AAVE, "WETH", "deposit", weth, 18))
        lines.append(Position(wallet, AAVE, "USDC", "borrow", -debt, 6))
        # bob's pool reports a liquidation threshold above 100%: out of range
        threshold = 10_500 if (bad_threshold and wallet == BOB) else 8250
        venues.append(_aave(wallet, weth, debt, eth_usd, threshold))
    return ChainSnapshot(
        chain="a",
        caip2="eip155:31337",
        read_point=ReadPoint(height, f"0x{height:064x}", publish_time, "latest"),
        balances=(TokenBalance(ALICE, "USDC", 100 * USDC, 6),),
        positions=tuple(lines),
        prices=tuple(
            PriceObservation(asset, "chainlink", Decimal(price), Decimal(0), publish_time, True)
            for asset, price in (("ETH", eth_usd), ("WETH", eth_usd), ("USDC", "1"))
        ),
        request_count=1,
        endpoint="http://127.0.0.1:9",
        venue_accounts=tuple(venues),
    )


async def _world(db: Database) -> dict[str, int]:
    owners = {}
    async with db.session() as session:
        for name, wallet in (("alice", ALICE), ("bob", BOB)):
            user_id = await add_user(session, name)
            await link_wallet(session, user_id, "a", wallet)
            owners[wallet] = user_id
    return owners


async def test_every_status_carries_its_venue_lines_and_the_view_that_binds(
    db: Database, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    owners = await _world(db)
    await record_snapshot(db, _snapshot(10, "3000"), owners, NOW, 5)
    report = await publish(db, config, as_of=NOW)
    assert report.written == 2

    async with db.session() as session:
        stored = await get_status(session, owners[BOB])
        served = await published_status(session, config, owners[BOB])
        rows = (
            await session.execute(
                text(
                    "SELECT user_name, venue, rules, chain, value, status, height "
                    "FROM v_user_venues ORDER BY user_name"
                )
            )
        ).all()
    assert stored is not None and served is not None
    # Stored headline: the venue line without liquidation prices; bob's pool health factor is
    # percentMul(30000e8, 8250) wadDiv 24000e8 = 1.03125.
    [line] = stored.document["venues"]
    assert (line["venue"], line["value"]) == (AAVE, "1.03125")
    # 1.03125 is above the pool's 1 but under the service's warning level
    assert Decimal("1.03125") < config.risk.warning_health_factor
    assert line["status"] == "warning"
    assert "liquidation_prices" not in line
    assert [(r.user_name, r.venue, r.value, r.height) for r in rows] == [
        ("alice", AAVE, Decimal("3.3"), 10),  # percentMul(12000e8, 8250) wadDiv 3000e8
        ("bob", AAVE, Decimal("1.03125"), 10),
    ]
    # Served: liquidation prices and the shock by the pool's rules, and what binds.
    [full] = served.document["venues"]
    assert full["value"] == "1.03125"
    # 24000 / (10 x 0.825), to the pool oracle's base unit (prices are whole 1e-8 USD)
    liquidation = Decimal(full["liquidation_prices"]["WETH"])
    assert abs(liquidation - Decimal(24000) / Decimal("8.25")) <= Decimal("1e-8")
    venue_shock = Decimal(full["liquidation_shock"])
    # 24000 / 24750 - 1, to a base unit of the shocked price (1e-8 / 2909 relative)
    assert abs(venue_shock - (Decimal(24000) / Decimal(24750) - 1)) < Decimal("1e-11")
    unified = served.document["liquidation_shock"]
    binding = served.document["binding"]
    shocks = [venue_shock] + ([Decimal(unified)] if unified is not None else [])
    assert abs(Decimal(binding["liquidation_shock"])) == min(abs(s) for s in shocks)
    expected_view = (
        "unified" if unified is not None and abs(Decimal(unified)) <= abs(venue_shock) else "venue"
    )
    assert binding["view"] == expected_view
    assert served.document["status"] == stored.document["status"]  # the headline stays unified


async def test_a_venue_line_is_rewritten_only_when_it_says_something_new(
    db: Database, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    owners = await _world(db)
    await record_snapshot(db, _snapshot(10, "3000"), owners, NOW, 5)
    await publish(db, config, as_of=NOW)
    # The same venue numbers read at a newer block: nothing to rewrite.
    await record_snapshot(db, _snapshot(11, "3000"), owners, NOW, 5)
    assert (await publish(db, config, as_of=NOW)).written == 0
    # Out-of-range parameters on bob's pool: his venue line says so, the status is rewritten,
    # the unified status is still published, and the bad line never binds.
    history = "SELECT count(*) FROM margin_status_history WHERE user_id = :u"
    async with db.session() as session:
        recorded = await session.scalar(text(history), {"u": owners[BOB]})
    await record_snapshot(db, _snapshot(12, "3000", bad_threshold=True), owners, NOW, 5)
    report = await publish(db, config, as_of=NOW)
    assert report.written == 1
    # a venue line changing status is a material change (history row, stream event) even
    # though the unified status did not move
    assert report.changed == 1
    async with db.session() as session:
        assert await session.scalar(text(history), {"u": owners[BOB]}) == recorded + 1
    async with db.session() as session:
        served = await published_status(session, config, owners[BOB])
    assert served is not None
    [line] = served.document["venues"]
    assert line["status"] == "unknown" and line["value"] is None
    assert "10500" in line["problem"] and line["value_reason"] == "parameters_unusable"
    assert line["liquidation_shock"] is None
    assert line["liquidation_shock_reason"] == "parameters_unusable"
    assert served.document["binding"] is None or served.document["binding"]["view"] == "unified"
    assert served.document["equity"] is not None


async def test_venue_reads_go_with_their_head(db: Database, tmp_path: Path) -> None:
    owners = await _world(db)
    snapshot = _snapshot(10, "3000")
    # an account nobody owns is not stored
    stranger = replace(snapshot.venue_accounts[0], account=Address("0x" + "cc" * 20))
    await record_snapshot(
        db, replace(snapshot, venue_accounts=(*snapshot.venue_accounts, stranger)), owners, NOW, 5
    )
    async with db.session() as session:
        count = await session.scalar(text("SELECT count(*) FROM venue_reads"))
        await session.execute(text("DELETE FROM chain_heads"))
        left = await session.scalar(text("SELECT count(*) FROM venue_reads"))
    assert (count, left) == (2, 0)
