"""The demo's Hyperliquid world: markets, alice (healthy) and bob (near liquidation) at the
same EVM addresses the demo gives them on the EVM chains, synthetic users for the benchmark,
and the adapter spec that reads it as config/devnet.toml does.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from decimal import Decimal
from typing import Any

from eth_utils.crypto import keccak

from chains.base import EndpointPolicy
from chains.evm.address import to_checksum
from chains.hyperliquid.localnet.world import World
from chains.hyperliquid.spec import HyperliquidChainSpec, PerpCoin, PriceCoin, SpotToken

DEMO_MARKETS = (
    ("ETH", 4, 25, Decimal("3000")),
    ("BTC", 5, 40, Decimal("95000")),
    ("HYPE", 2, 10, Decimal("40")),
)


def demo_address(name: str) -> str:
    """The demo user's address (as aggregator.demo.demo_evm_wallet derives it).

    May raise: nothing.
    """
    return to_checksum(keccak(f"xmargin-demo:{name}".encode())[12:].hex())


def add_demo_markets(world: World) -> None:
    """May raise: nothing."""
    for coin, sz_decimals, max_leverage, mark in DEMO_MARKETS:
        if coin not in world.markets:
            world.add_market(coin, sz_decimals, max_leverage, mark)


def seed_demo_world(world: World) -> dict[str, str]:
    """Markets, and the books of alice and bob; returns name → address. May raise: nothing."""
    add_demo_markets(world)
    alice, bob = demo_address("alice"), demo_address("bob")
    # alice: plenty of cash, a 5x cross ETH long, an isolated HYPE long, some spot.
    world.deposit(alice, Decimal("25000"))
    world.open_position(alice, "ETH", Decimal("2"), Decimal("2950"), 5)
    world.open_position(alice, "HYPE", Decimal("50"), Decimal("38"), 5, Decimal("400"))
    world.credit_spot(alice, "USDC", Decimal("1500"))
    world.credit_spot(alice, "HYPE", Decimal("20"))
    # bob: a 20x cross ETH long on little cash: 1.4% lower the venue liquidates him (at
    # about 2,959), and in the unified status it adds to his initial-margin shortfall.
    world.deposit(bob, Decimal("1500"))
    world.open_position(bob, "ETH", Decimal("10"), Decimal("3050"), 20)
    world.credit_spot(bob, "USDC", Decimal("100"))
    return {"alice": alice, "bob": bob}


def seed_synthetic_users(world: World, count: int) -> list[str]:
    """`count` accounts with cash, a cross ETH long and spot USDC; their addresses.

    May raise: nothing.
    """
    add_demo_markets(world)
    users = []
    for index in range(count):
        user = "0x" + hashlib.sha256(f"xmargin-bench:{index}".encode()).hexdigest()[:40]
        world.deposit(user, Decimal("10000"))
        world.open_position(user, "ETH", Decimal("1.5"), Decimal("2990"), 10)
        world.credit_spot(user, "USDC", Decimal("100"))
        users.append(user)
    return users


def move_marks(world: World, rng: random.Random) -> None:
    """One step of a random walk (about ±0.5%) of every mark; the oracle trails it slightly.

    May raise: nothing.
    """
    with world.lock:
        for market in world.markets.values():
            step = Decimal(str(round(rng.uniform(-0.005, 0.005), 6)))
            mark = (market.mark * (1 + step)).quantize(
                Decimal("0.1") ** max(1, 6 - market.sz_decimals)
            )
            world.set_mark(market.coin, mark, (mark + market.mark) / 2)


def demo_spec(
    urls: tuple[str, ...], chain: str = "devnet_hyperliquid", **overrides: Any
) -> HyperliquidChainSpec:
    """The spec config/devnet.toml gives the demo chain (tests may override fields).

    May raise: TypeError (an override that is not a spec field).
    """
    spec = HyperliquidChainSpec(
        chain=chain,
        network="localnet",
        endpoints=EndpointPolicy(urls=urls, timeout_seconds=5, retries=1, backoff_seconds=0.05),
        perp_coins=(PerpCoin("ETH", "ETH"), PerpCoin("HYPE", "HYPE")),
        spot_tokens=(SpotToken("USDC", "USDC", 8), SpotToken("HYPE", "HYPE", 8)),
        price_coins=(PriceCoin("HYPE", "HYPE"),),
        cash_asset="USDC",
        cash_decimals=8,
    )
    return replace(spec, **overrides) if overrides else spec
