"""Shared set-up for the Hyperliquid integration tests: a real local info server (HTTP on
127.0.0.1) with the demo world at a frozen clock, and adapters pointed at it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx

from chains.base import Address, ChainSnapshot
from chains.hyperliquid.adapter import HyperliquidAdapter
from chains.hyperliquid.localnet import (
    LocalHyperliquid,
    World,
    demo_address,
    demo_spec,
    seed_demo_world,
)

START_MS = 1_764_000_000_000
ALICE = Address(demo_address("alice"))
BOB = Address(demo_address("bob"))


@contextmanager
def demo_venue(frozen: bool = True, **server: Any) -> Iterator[LocalHyperliquid]:
    """The demo world at a frozen clock (START_MS), or on the wall clock."""
    world = World(manual_time_ms=START_MS if frozen else None)
    with LocalHyperliquid(world, **server) as venue:
        seed_demo_world(venue.world)
        yield venue


def adapter(*urls: str, **spec: Any) -> HyperliquidAdapter:
    return HyperliquidAdapter(demo_spec(tuple(urls), chain="hl-test", **spec))


async def read(hl: HyperliquidAdapter, wallets: list[Address]) -> ChainSnapshot:
    return await hl.snapshot(wallets)


def control(venue: LocalHyperliquid, **body: Any) -> Any:
    response = httpx.post(venue.url.replace("/info", "/control"), json=body)
    assert response.status_code == 200, response.text
    return response.json()


def closed_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/info"


def human(amount_raw: int, decimals: int) -> Decimal:
    return Decimal(amount_raw).scaleb(-decimals)


def assert_no_float(snapshot: ChainSnapshot) -> None:
    """Every stored amount is an int in base units; every price and entry a Decimal."""
    for line in (*snapshot.balances, *snapshot.positions):
        assert type(line.amount_raw) is int and type(line.decimals) is int
    for position in snapshot.positions:
        assert position.entry_price is None or type(position.entry_price) is Decimal
    for price in snapshot.prices:
        assert type(price.price) is Decimal and type(price.conf) is Decimal
