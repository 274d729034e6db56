"""Alerts: the outbox of status-transition events and their delivery attempts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

`alert_events` is written in the publish transaction (one row per event and webhook) and read
by the deliverer (`FOR UPDATE SKIP LOCKED` over due pending rows); `alert_attempts` records
every POST of an event.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AWARE = sa.DateTime(timezone=True)
_KINDS = "kind IN ('warning', 'margin_call', 'liquidatable', 'healthy', 'stale', 'test')"
_STATES = "state IN ('pending', 'delivered', 'suppressed')"


def upgrade() -> None:
    op.create_table(
        "alert_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("webhook", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", _AWARE, server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", _AWARE, server_default=sa.text("now()"), nullable=False),
        sa.Column("delivered_at", _AWARE, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(_KINDS, name=op.f("ck_alert_events_kind_known")),
        sa.CheckConstraint(_STATES, name=op.f("ck_alert_events_state_known")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_alert_events_attempts_not_negative")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_alert_events_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_alert_events_event_id")),
    )
    op.create_index(
        "ix_alert_events_due",
        "alert_events",
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_alert_events_webhook_user_id",
        "alert_events",
        ["webhook", "user_id", sa.text("id DESC")],
    )
    op.create_table(
        "alert_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("alert_event_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", _AWARE, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "duration_ms >= 0", name=op.f("ck_alert_attempts_duration_not_negative")
        ),
        sa.CheckConstraint(
            "status_code IS NOT NULL OR error IS NOT NULL",
            name=op.f("ck_alert_attempts_has_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["alert_event_id"],
            ["alert_events.id"],
            name=op.f("fk_alert_attempts_alert_event_id_alert_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_attempts")),
    )
    op.create_index(op.f("ix_alert_attempts_alert_event_id"), "alert_attempts", ["alert_event_id"])


def downgrade() -> None:
    op.drop_table("alert_attempts")
    op.drop_table("alert_events")
