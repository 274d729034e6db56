"""The demo Solana world, read by config/devnet.toml's adapter spec and published: Drift perps
carry the configured market terms, Kamino deposits are valued in underlying tokens."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from aggregator.config import load_config
from aggregator.polling import poll_chain
from aggregator.publish import publish
from aggregator.publish.documents import published_status
from aggregator.specs import chain_spec
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from chains.registry import build_adapter
from chains.solana.localnet import LocalSolana
from chains.solana.localnet.demo import DEMO_SOLANA, seed_demo_world

REPO = Path(__file__).resolve().parents[3]
USDC_ON_EVM = (
    'price = { kind = "chainlink", chain = "devnet_l1", '
    'address = "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707" }'
)
USDC_ON_SOLANA = (
    'price = { kind = "pyth", chain = "devnet_solana", '
    f'address = "{DEMO_SOLANA.pyth_usdc_usd}", feed_id = "{DEMO_SOLANA.usdc_usd_feed_id}" }}'
)


async def test_demo_solana_world_publishes_with_configured_perp_terms(
    db: Database, tmp_path: Path
) -> None:
    devnet = (REPO / "config" / "devnet.toml").read_text()
    assert USDC_ON_EVM in devnet
    with LocalSolana() as local:
        seed_demo_world(local)
        # The devnet config as shipped, pointed at this test's local RPC, with USDC priced by
        # the Solana USDC/USD account (which also prices PYUSD) since no EVM chain runs here.
        base = REPO / "config" / "default.toml"
        path = tmp_path / "devnet.toml"
        path.write_text(
            devnet.replace('extends = "default.toml"', f'extends = "{base}"')
            .replace("http://127.0.0.1:18899", local.url)
            .replace(USDC_ON_EVM, USDC_ON_SOLANA)
        )
        config = load_config(path)
        async with db.session() as session:
            alice = await add_user(session, "alice")
            bob = await add_user(session, "bob")
            await link_wallet(session, alice, "devnet_solana", DEMO_SOLANA.alice)
            await link_wallet(session, bob, "devnet_solana", DEMO_SOLANA.bob)
        adapter = build_adapter(chain_spec(config, "devnet_solana"))
        try:
            owners = {DEMO_SOLANA.alice: alice, DEMO_SOLANA.bob: bob}
            result = await poll_chain(db, adapter, owners)
        finally:
            await adapter.aclose()
    assert result.ok and result.issues == 0, result.describe()
    report = await publish(db, config)
    assert report.unvalued == (), report.describe()
    async with db.session() as session:
        alice_status = await published_status(session, config, alice)
        bob_status = await published_status(session, config, bob)
    assert alice_status is not None and bob_status is not None

    (perp,) = [line for line in alice_status.document["lines"] if line["kind"] == "perp"]
    # 10 SOL-PERP long: imr 0.10 and mmr 0.05 from config (imf 0.0005 * sqrt(10) is smaller),
    # plus the latency buffer on the notional.
    notional = Decimal(perp["notional"])
    buffer = Decimal(perp["buffer"])
    assert Decimal(perp["amount"]) == 10
    assert Decimal(perp["requirement"]["init"]) == notional * (Decimal("0.10") + buffer)
    assert Decimal(perp["requirement"]["maint"]) == notional * (Decimal("0.05") + buffer)

    kamino = [h for h in bob_status.document["holdings"] if h["venue"] == "kamino"]
    # 16 collateral tokens at 1,250 SOL per 1,000: 20 SOL; 1,000 USDC owed.
    assert sorted((h["asset"], h["kind"], h["amount"]) for h in kamino) == [
        ("SOL", "deposit", "20"),
        ("USDC", "borrow", "-1000"),
    ]
    # One Pyth account prices both USDC and PYUSD: each asset gets its price.
    assert alice_status.document["unpriced_assets"] == []
    pyusd = [line for line in alice_status.document["lines"] if line["asset"] == "PYUSD"]
    assert [(line["amount"], line["price"]) for line in pyusd] == [("1000", "1")]
