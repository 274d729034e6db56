"""The local Hyperliquid world polled into the real test Postgres and published with
config/devnet.toml's Hyperliquid chain: poll_runs record a poll cut short by the budget, the
lines of unread accounts stay, and the status counts cross perps with the venue's terms, the
USD cash and spot, and leaves the isolated bucket out."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from hl_world import ALICE, BOB, START_MS, adapter, demo_venue
from sqlalchemy import select

from aggregator.config import load_config
from aggregator.polling import poll_chain
from aggregator.publish import publish
from aggregator.publish.documents import published_status
from aggregator.specs import chain_spec
from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.store.observed.observation_reads import latest_observations
from chains.registry import build_adapter

REPO = Path(__file__).resolve().parents[3]
CHAIN = "devnet_hyperliquid"
ETH_ON_EVM = (
    'price = { kind = "chainlink", chain = "devnet_l1", '
    'address = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9" }'
)
USDC_ON_EVM = (
    'price = { kind = "chainlink", chain = "devnet_l1", '
    'address = "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707" }'
)

VENUE_PRICE = 'price = {{ kind = "hyperliquid", chain = "devnet_hyperliquid", coin = "{coin}" }}'


async def _link(db: Database, chain: str) -> dict[str, int]:
    async with db.session() as session:
        alice = await add_user(session, "alice")
        bob = await add_user(session, "bob")
        await link_wallet(session, alice, chain, ALICE)
        await link_wallet(session, bob, chain, BOB)
    return {ALICE: alice, BOB: bob}


async def test_a_poll_cut_short_is_recorded_and_the_unread_lines_stay(db: Database) -> None:
    owners = await _link(db, "hl-test")
    with demo_venue() as venue:
        # Room for metaAndAssetCtxs and one account (24 with its mode) per window.
        hl = adapter(
            venue.url, weight_per_minute=44, budget_window_seconds=0.3, budget_wait_seconds=0
        )
        try:
            first = await poll_chain(db, hl, owners)
            venue.world.advance(1_000)
            await asyncio.sleep(0.35)
            second = await poll_chain(db, hl, owners)
        finally:
            await hl.aclose()

    assert first.ok and second.ok
    async with db.session() as session:
        runs = list(await session.scalars(select(m.PollRun).order_by(m.PollRun.id)))
        heads = list(await session.scalars(select(m.ChainHead).order_by(m.ChainHead.id)))
        observations = (await latest_observations(session))["hl-test"]
    assert [run.height for run in runs] == [START_MS, START_MS + 1_000]
    for run in runs:
        summary = run.issues[0]
        assert summary["subject"] == "hl-test"
        assert summary["message"].startswith(
            "poll cut short by the weight budget (or 429s): 1 of 2"
        )
    assert runs[0].issues[1] == {
        "subject": BOB,
        "message": f"not read this poll (weight budget of {venue.url}); no earlier data",
    }
    assert runs[1].issues[1]["subject"] == ALICE  # bob went first; alice's lines were kept
    assert runs[1].issues[1]["message"].endswith("read at 2025-11-24T16:00:00.000+00:00 are kept")
    assert [(h.finality, h.hash) for h in heads] == [
        ("latest", f"hypercore-time:{START_MS}"),
        ("latest", f"hypercore-time:{START_MS + 1_000}"),
    ]
    assert heads[1].block_timestamp.timestamp() == START_MS // 1000  # the oldest data held
    stored = {(o.user_id, o.position.asset, o.position.market) for o in observations.positions}
    assert stored == {
        (owners[ALICE], "ETH", "ETH|cross|imr=0.2|mmr=0.02"),
        (owners[ALICE], "HYPE", "HYPE|isolated|imr=0.2|mmr=0.05"),
        (owners[ALICE], "USDC", "cash"),
        (owners[BOB], "ETH", "ETH|cross|imr=0.05|mmr=0.02"),
        (owners[BOB], "USDC", "cash"),
    }


async def test_a_new_process_keeps_the_stored_lines_of_accounts_it_cannot_read(
    db: Database,
) -> None:
    """A cron `cycle` is a new process each time: its adapter has no last reads in memory, so
    the poller hands it the stored ones; an account the budget leaves unread keeps them."""
    owners = await _link(db, "hl-test")
    with demo_venue() as venue:
        roomy = adapter(venue.url)
        try:
            await poll_chain(db, roomy, owners)  # both accounts read and stored
        finally:
            await roomy.aclose()
        venue.world.advance(1_000)
        tight = adapter(venue.url, weight_per_minute=44, budget_wait_seconds=0)
        try:
            result = await poll_chain(db, tight, owners)
        finally:
            await tight.aclose()

    assert result.ok
    async with db.session() as session:
        (last_run,) = await session.scalars(
            select(m.PollRun).order_by(m.PollRun.id.desc()).limit(1)
        )
        observations = (await latest_observations(session))["hl-test"]
    kept = [issue for issue in last_run.issues if issue["message"].endswith("are kept")]
    assert [issue["subject"] for issue in kept] == [BOB]
    assert kept[0]["message"].startswith(f"not read this poll (weight budget of {venue.url})")
    assert observations.read_point.height == START_MS + 1_000
    assert observations.read_point.timestamp == START_MS // 1000  # bob's lines are older
    bob_lines = {
        (o.position.asset, o.position.market)
        for o in observations.positions
        if o.user_id == owners[BOB]
    }
    assert bob_lines == {("ETH", "ETH|cross|imr=0.05|mmr=0.02"), ("USDC", "cash")}


async def test_the_demo_world_publishes_through_devnet_config(db: Database, tmp_path: Path) -> None:
    devnet = (REPO / "config" / "devnet.toml").read_text()
    assert ETH_ON_EVM in devnet and USDC_ON_EVM in devnet
    owners = await _link(db, CHAIN)
    with demo_venue(frozen=False) as venue:  # wall clock: the prices are fresh at publish
        # No EVM node runs here: ETH gets the venue's oracle price and USDC that of a 1.0
        # market the test adds to the world.
        venue.world.add_market("USDC", 0, 1, Decimal(1))
        base = REPO / "config" / "default.toml"
        path = tmp_path / "devnet.toml"
        path.write_text(
            devnet.replace('extends = "default.toml"', f'extends = "{base}"')
            .replace("http://127.0.0.1:18960/info", venue.url)
            .replace(ETH_ON_EVM, VENUE_PRICE.format(coin="ETH"), 1)
            .replace(USDC_ON_EVM, VENUE_PRICE.format(coin="USDC"), 1)
        )
        config = load_config(path)
        hl = build_adapter(chain_spec(config, CHAIN))
        try:
            result = await poll_chain(db, hl, owners)
        finally:
            await hl.aclose()
    assert result.ok and result.issues == 0, result.describe()
    report = await publish(db, config)
    assert report.unvalued == (), report.describe()
    async with db.session() as session:
        alice = await published_status(session, config, owners[ALICE])
        bob = await published_status(session, config, owners[BOB])
    assert alice is not None and bob is not None
    doc = alice.document
    perps = [line for line in doc["lines"] if line["kind"] == "perp"]
    (eth,) = perps  # the isolated HYPE bucket is fenced: not in the unified status
    notional, buffer = Decimal(eth["notional"]), Decimal(eth["buffer"])
    assert (Decimal(eth["amount"]), notional) == (Decimal(2), Decimal(6000))
    # imr = 1/leverage 5, mmr = 1/(2 * max leverage 25), plus the latency buffer
    tiny = Decimal("1e-12")  # the shown buffer is rounded to 18 places
    assert abs(Decimal(eth["requirement"]["init"]) - notional * (Decimal("0.2") + buffer)) < tiny
    assert abs(Decimal(eth["requirement"]["maint"]) - notional * (Decimal("0.02") + buffer)) < tiny
    # The account's inventory lists every line read, the isolated bucket too.
    held = [(h["asset"], h["kind"], h["amount"]) for h in doc["holdings"]]
    assert sorted(held) == [
        ("ETH", "perp", "2"),
        ("HYPE", "balance", "20"),
        ("HYPE", "perp", "50"),
        ("USDC", "balance", "1500"),
        ("USDC", "deposit", "24600"),
    ]
    assert doc["holdings"][0]["account"].startswith("hypercore:localnet:0x")
    # spot 1,500 USDC + 20 HYPE at 40 + cash 24,600 + ETH pnl 2 * (3,000 - 2,950)
    assert Decimal(doc["equity"]) == Decimal(27000)
    assert doc["chains"]["hypercore:localnet"]["finality"] == "latest"
    assert doc["status"] == "healthy" and bob.document["status"] != "liquidatable"
    assert Decimal(bob.document["equity"]) == Decimal(1100)  # 1,500 cash - 500 pnl + 100 spot
