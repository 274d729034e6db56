"""Reorg safety: head parent hashes, orphaned heads.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

`chain_heads` gains the parent hash of the block read and, for a head whose block a reorg
replaced, `orphaned_at` with `orphan_reason` (its observations are never used again);
`poll_runs.orphaned_heads` counts the heads a poll orphaned. `v_chain_freshness` reports the
newest head that is not orphaned, with `parent_hash`, `orphaned_heads` and `last_orphaned_at`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AWARE = sa.DateTime(timezone=True)

# The view as 0001 made it; `{live}` narrows the head picked, `{extra}` appends columns.
_CHAIN_FRESHNESS = """
CREATE VIEW v_chain_freshness AS
WITH known AS (
    SELECT key AS chain FROM chains
    UNION
    SELECT DISTINCT chain FROM poll_runs
)
SELECT k.chain, c.caip2,
       h.height, h.hash AS block_hash, h.block_timestamp, h.finality, h.observed_at,
       now() - h.block_timestamp AS data_age, now() - h.observed_at AS observed_age,
       lp.finished_at AS last_poll_at, lp.ok AS last_poll_ok,
       lf.finished_at AS last_error_at, lf.error AS last_error,
       (SELECT count(*) FROM poll_runs f
         WHERE f.chain = k.chain AND NOT f.ok AND f.id > coalesce(h.poll_run_id, 0))
         AS failures_since_head{extra}
FROM known k
LEFT JOIN chains c ON c.key = k.chain
LEFT JOIN LATERAL (
    SELECT * FROM chain_heads ch WHERE ch.chain = k.chain{live} ORDER BY ch.id DESC LIMIT 1
) h ON true
LEFT JOIN LATERAL (
    SELECT finished_at, ok FROM poll_runs p WHERE p.chain = k.chain ORDER BY p.id DESC LIMIT 1
) lp ON true
LEFT JOIN LATERAL (
    SELECT finished_at, error FROM poll_runs p
    WHERE p.chain = k.chain AND NOT p.ok ORDER BY p.id DESC LIMIT 1
) lf ON true{joins}
"""

_REORG_COLUMNS = """,
       h.parent_hash,
       coalesce(o.orphaned_heads, 0) AS orphaned_heads, o.last_orphaned_at"""
_REORG_JOIN = """
LEFT JOIN LATERAL (
    SELECT count(*) AS orphaned_heads, max(oh.orphaned_at) AS last_orphaned_at
    FROM chain_heads oh WHERE oh.chain = k.chain AND oh.orphaned_at IS NOT NULL
) o ON true"""


def upgrade() -> None:
    op.add_column("chain_heads", sa.Column("parent_hash", sa.Text(), nullable=True))
    op.add_column("chain_heads", sa.Column("orphaned_at", _AWARE, nullable=True))
    op.add_column("chain_heads", sa.Column("orphan_reason", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_chain_heads_orphan_has_reason"),
        "chain_heads",
        "(orphaned_at IS NULL) = (orphan_reason IS NULL)",
    )
    op.create_index(
        "ix_chain_heads_live",
        "chain_heads",
        ["chain", sa.text("id DESC")],
        postgresql_where=sa.text("orphaned_at IS NULL"),
    )
    op.add_column(
        "poll_runs",
        sa.Column("orphaned_heads", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_poll_runs_orphaned_heads_not_negative"), "poll_runs", "orphaned_heads >= 0"
    )
    op.execute("DROP VIEW v_chain_freshness")
    op.execute(
        _CHAIN_FRESHNESS.format(
            extra=_REORG_COLUMNS, live=" AND ch.orphaned_at IS NULL", joins=_REORG_JOIN
        )
    )


def downgrade() -> None:
    op.execute("DROP VIEW v_chain_freshness")
    op.drop_constraint(op.f("ck_poll_runs_orphaned_heads_not_negative"), "poll_runs", type_="check")
    op.drop_column("poll_runs", "orphaned_heads")
    op.drop_index("ix_chain_heads_live", table_name="chain_heads")
    op.drop_constraint(op.f("ck_chain_heads_orphan_has_reason"), "chain_heads", type_="check")
    op.drop_column("chain_heads", "orphan_reason")
    op.drop_column("chain_heads", "orphaned_at")
    op.drop_column("chain_heads", "parent_hash")
    # Last: the view's `SELECT *` of chain_heads binds the columns there are when it is made.
    op.execute(_CHAIN_FRESHNESS.format(extra="", live="", joins=""))
