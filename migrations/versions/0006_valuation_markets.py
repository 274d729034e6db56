"""Valuation markets: the shared inputs of one publish pass, so statuses can be stored compact.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

A pass values every user against one market (its instant, each chain's read point, each asset's
price and volatility). That market is stored once in `valuation_markets` (keyed by a digest of
its content, so every shard of a pass finds the same row); a status row refers to it and to
the heads its lines were read at, and the API renders the full document from those on read.
Lines are indexed by (head, user) so a shard reads its own users' lines without scanning
everyone's.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AWARE = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "valuation_markets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("as_of", _AWARE, nullable=False),
        sa.Column("inputs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", _AWARE, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_valuation_markets")),
        sa.UniqueConstraint("digest", name=op.f("uq_valuation_markets_digest")),
    )
    # A shard reads the lines of its users at the pass's heads: (head, user) finds exactly them.
    for table in ("balances", "positions"):
        op.drop_index(op.f(f"ix_{table}_chain_head_id"), table_name=table)
        op.create_index(
            op.f(f"ix_{table}_chain_head_id_user_id"), table, ["chain_head_id", "user_id"]
        )


def downgrade() -> None:
    for table in ("balances", "positions"):
        op.drop_index(op.f(f"ix_{table}_chain_head_id_user_id"), table_name=table)
        op.create_index(op.f(f"ix_{table}_chain_head_id"), table, ["chain_head_id"])
    op.drop_table("valuation_markets")
