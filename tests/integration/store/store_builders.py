"""Small builders for store tests: snapshots, statuses, and row counts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from aggregator.store.database import Database
from aggregator.store.published.statuses import StatusRecord
from chains.base import (
    Address,
    ChainSnapshot,
    LineIssue,
    Position,
    PriceObservation,
    ReadPoint,
    TokenBalance,
)

ALICE_EVM = Address("0x1111111111111111111111111111111111111111")
BOB_EVM = Address("0x2222222222222222222222222222222222222222")
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
BLOCK_TIME_0 = 1_767_614_400  # 2026-01-05T12:00:00Z


def snapshot(
    height: int,
    *,
    chain: str = "ethereum",
    balances: tuple[TokenBalance, ...] = (),
    positions: tuple[Position, ...] = (),
    prices: tuple[PriceObservation, ...] = (),
    issues: tuple[LineIssue, ...] = (),
) -> ChainSnapshot:
    return ChainSnapshot(
        chain=chain,
        caip2="eip155:1" if chain == "ethereum" else f"test:{chain}",
        read_point=ReadPoint(
            height=height,
            block_hash=f"0x{height:064x}",
            timestamp=BLOCK_TIME_0 + 12 * height,
            finality="finalized",
        ),
        balances=balances,
        positions=positions,
        prices=prices,
        issues=issues,
        request_count=3,
        endpoint="http://127.0.0.1:8545",
    )


def usdc(account: Address, amount_raw: int) -> TokenBalance:
    return TokenBalance(
        account=account, asset="USDC", amount_raw=amount_raw, decimals=6, token_address=USDC
    )


def eth(account: Address, amount_raw: int) -> TokenBalance:
    return TokenBalance(account=account, asset="ETH", amount_raw=amount_raw, decimals=18)


def eth_price(price: str, publish_time: int, *, valid: bool = True) -> PriceObservation:
    return PriceObservation(
        asset="ETH",
        source="chainlink:0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419",
        price=Decimal(price),
        conf=Decimal("0"),
        publish_time=publish_time,
        valid=valid,
        invalid_reason=None if valid else "stale",
    )


def status(
    user_id: int,
    *,
    status: str = "healthy",
    equity: str = "1000",
    health_factor: str | None = "2.5",
    stale_chains: tuple[str, ...] = (),
    as_of: datetime = T0,
) -> StatusRecord:
    return StatusRecord(
        user_id=user_id,
        as_of=as_of,
        status=status,
        stale=bool(stale_chains),
        stale_chains=stale_chains,
        health_factor=None if health_factor is None else Decimal(health_factor),
        equity_usd=Decimal(equity),
        weighted_collateral_init_usd=Decimal("800"),
        weighted_collateral_maint_usd=Decimal("900"),
        requirement_init_usd=Decimal("300"),
        requirement_maint_usd=Decimal("360"),
        health_init_usd=Decimal("500"),
        health_maint_usd=Decimal("540"),
        free_collateral_usd=Decimal("500"),
        document={"user_id": user_id, "status": status, "equity_usd": equity},
        inputs={"ethereum": {"height": 100, "hash": "0xabc"}},
    )


async def count(db: Database, table: str) -> int:
    async with db.session() as session:
        value = await session.scalar(text(f"SELECT count(*) FROM {table}"))
    assert isinstance(value, int)
    return value


async def rows(db: Database, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with db.session() as session:
        result = await session.execute(text(sql), params)
        return [dict(row._mapping) for row in result]
