"""Shard polls: (chain, shard) heads, their cursor fence, and the EVM head follower's cursor.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

`poll_runs` and `chain_heads` gain `shard_index` and `shard_count`: NULL for a whole-chain
poll, else the poll read only the wallets of users with `user_id % shard_count = shard_index`
(`aggregator.polling.shards`). `poll_shard_cursors` is the fence of a shard poll: the height
it last stored, advanced by a conditional update in the transaction that writes the lines, so
a duplicate or late run of the same shard can never write twice. `follow_cursors` holds the
last block an EVM chain's head follower has read the logs of (`aggregator.work.follow`);
`poll_sweeps` when the sweeper last deferred every shard poll of a chain (`work.sweep`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AWARE = sa.DateTime(timezone=True)
_SHARD_PAIR = "(shard_index IS NULL) = (shard_count IS NULL)"
_SHARD_RANGE = "shard_index IS NULL OR (shard_index >= 0 AND shard_index < shard_count)"


def upgrade() -> None:
    for table in ("poll_runs", "chain_heads"):
        op.add_column(table, sa.Column("shard_index", sa.Integer(), nullable=True))
        op.add_column(table, sa.Column("shard_count", sa.Integer(), nullable=True))
        op.create_check_constraint(op.f(f"ck_{table}_shard_pair"), table, _SHARD_PAIR)
        op.create_check_constraint(op.f(f"ck_{table}_shard_in_range"), table, _SHARD_RANGE)
    op.create_index(
        "ix_chain_heads_shard_live",
        "chain_heads",
        ["chain", "shard_count", "shard_index", sa.text("id DESC")],
        postgresql_where=sa.text("orphaned_at IS NULL"),
    )
    op.create_table(
        "poll_shard_cursors",
        sa.Column("chain", sa.Text(), nullable=False),
        sa.Column("shard_index", sa.Integer(), nullable=False),
        sa.Column("shard_count", sa.Integer(), nullable=False),
        sa.Column("height", sa.BigInteger(), nullable=False),
        sa.Column("head_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", _AWARE, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "shard_index >= 0 AND shard_index < shard_count",
            name=op.f("ck_poll_shard_cursors_shard_in_range"),
        ),
        sa.ForeignKeyConstraint(
            ["head_id"],
            ["chain_heads.id"],
            name=op.f("fk_poll_shard_cursors_head_id_chain_heads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint(
            "chain", "shard_index", "shard_count", name=op.f("pk_poll_shard_cursors")
        ),
    )
    op.create_table(
        "follow_cursors",
        sa.Column("chain", sa.Text(), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _AWARE, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("last_block >= 0", name=op.f("ck_follow_cursors_last_block_known")),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_follow_cursors")),
    )
    op.create_table(
        "poll_sweeps",
        sa.Column("chain", sa.Text(), nullable=False),
        sa.Column("swept_at", _AWARE, nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_poll_sweeps")),
    )


def downgrade() -> None:
    op.drop_table("poll_sweeps")
    op.drop_table("follow_cursors")
    op.drop_table("poll_shard_cursors")
    op.drop_index("ix_chain_heads_shard_live", table_name="chain_heads")
    for table in ("chain_heads", "poll_runs"):
        op.drop_constraint(op.f(f"ck_{table}_shard_in_range"), table, type_="check")
        op.drop_constraint(op.f(f"ck_{table}_shard_pair"), table, type_="check")
        op.drop_column(table, "shard_count")
        op.drop_column(table, "shard_index")
