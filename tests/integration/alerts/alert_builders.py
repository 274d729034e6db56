"""Builders for the alert tests: users, statuses in the publish transaction, webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from aggregator.alerts.config import AlertKind, AlertSettings, WebhookConfig
from aggregator.store.accounts.users import add_user
from aggregator.store.database import Database
from aggregator.store.published.statuses import StatusRecord, publish_statuses

SECRET_ENV = "XMARGIN_TEST_HOOK_SECRET"
SECRET = "whsec-test-0123456789abcdef"
ENV = {SECRET_ENV: SECRET}
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def webhook(
    url: str,
    name: str = "ops",
    *,
    transitions: Sequence[AlertKind] | None = None,
    users: list[str] | None = None,
    min_interval_seconds: float = 0,
) -> WebhookConfig:
    fields: dict[str, Any] = {"name": name, "url": url, "secret_env": SECRET_ENV}
    if transitions is not None:
        fields["transitions"] = list(transitions)
    if users is not None:
        fields["users"] = users
    fields["min_interval_seconds"] = min_interval_seconds
    return WebhookConfig.model_validate(fields)


def settings(
    *hooks: WebhookConfig, timeout: float = 2.0, backoff_base: float = 0.05
) -> AlertSettings:
    return AlertSettings(
        webhooks=list(hooks),
        timeout_seconds=timeout,
        backoff_base_seconds=backoff_base,
        backoff_max_seconds=max(0.2, backoff_base),
    )


def status(
    user_id: int,
    state: str = "healthy",
    *,
    health_factor: str | None = "2.5",
    health_maint: str = "540",
    stale_chains: tuple[str, ...] = (),
) -> StatusRecord:
    return StatusRecord(
        user_id=user_id,
        as_of=T0,
        status=state,
        stale=bool(stale_chains),
        stale_chains=stale_chains,
        health_factor=None if health_factor is None else Decimal(health_factor),
        equity_usd=Decimal("1000"),
        weighted_collateral_init_usd=Decimal("800"),
        weighted_collateral_maint_usd=Decimal("900"),
        requirement_init_usd=Decimal("300"),
        requirement_maint_usd=Decimal("360"),
        health_init_usd=Decimal("500"),
        health_maint_usd=Decimal(health_maint),
        free_collateral_usd=Decimal("500"),
        document={"user_id": user_id, "status": state},
        inputs={},
    )


async def users(db: Database, *names: str) -> list[int]:
    async with db.session() as session:
        return [await add_user(session, name) for name in names]


async def publish(
    db: Database, records: Sequence[StatusRecord], hooks: Sequence[WebhookConfig]
) -> int:
    async with db.session() as session:
        return await publish_statuses(session, records, webhooks=hooks)


async def query(db: Database, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with db.session() as session:
        return [dict(row._mapping) for row in await session.execute(text(sql), params)]
