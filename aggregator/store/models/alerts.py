"""The alert outbox: events written with a status, and every delivery attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Identity, Index, Integer, func, text
from sqlalchemy.orm import Mapped, mapped_column

from aggregator.store.models.base import Base, check_in

ALERT_EVENT_KINDS = ("warning", "margin_call", "liquidatable", "healthy", "stale", "test")
ALERT_EVENT_STATES = ("pending", "delivered", "suppressed")


class AlertEvent(Base):
    """One event for one webhook: the outbox row written in the publish transaction, and its
    delivery state. `event_id` is the idempotency key receivers see; `payload` is the body."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    event_id: Mapped[str] = mapped_column(unique=True)
    webhook: Mapped[str]
    kind: Mapped[str]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None]

    __table_args__ = (
        CheckConstraint(check_in("kind", ALERT_EVENT_KINDS), name="kind_known"),
        CheckConstraint(check_in("state", ALERT_EVENT_STATES), name="state_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The deliverer's claim: due pending rows, oldest first.
        Index(
            "ix_alert_events_due",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
        ),
        # The minimum interval per (webhook, user): the newest event of a pair.
        Index("ix_alert_events_webhook_user_id", "webhook", "user_id", text("id DESC")),
    )


class AlertAttempt(Base):
    """One POST of an event: when, how long, and what came back (status code or error)."""

    __tablename__ = "alert_attempts"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    alert_event_id: Mapped[int] = mapped_column(
        ForeignKey("alert_events.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None]

    __table_args__ = (
        CheckConstraint("duration_ms >= 0", name="duration_not_negative"),
        CheckConstraint("status_code IS NOT NULL OR error IS NOT NULL", name="has_outcome"),
    )


ALERT_TABLES = ("alert_events", "alert_attempts")
