"""Venue view: each venue account's own parameters and numbers, read with the positions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

`venue_reads` holds, per chain head and user, each venue account's parameters, amounts, the
venue's own prices and the numbers the venue reports itself (`document`; see
`aggregator.store.observed.venue_reads`), or why they cannot be used (`problem`). A pass values each
venue account by that venue's rules and stores the lines in the status document (`venues`);
`v_user_venues` lists them per user, one row per venue account, with which view binds.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

V_USER_VENUES = """
CREATE VIEW v_user_venues AS
SELECT ms.user_id, u.name AS user_name,
       v ->> 'venue' AS venue, v ->> 'rules' AS rules, v ->> 'chain' AS chain,
       v ->> 'account' AS account, v ->> 'subaccount' AS subaccount,
       v ->> 'metric' AS metric, (v ->> 'value')::numeric AS value,
       v ->> 'status' AS status,
       (v ->> 'collateral_usd')::numeric AS collateral_usd,
       (v ->> 'requirement_usd')::numeric AS requirement_usd,
       (v ->> 'health_usd')::numeric AS health_usd,
       v ->> 'problem' AS problem,
       (v -> 'read_point' ->> 'height')::bigint AS height,
       v -> 'read_point' ->> 'block_hash' AS block_hash,
       ms.status AS unified_status,
       ms.as_of
FROM margin_status ms
JOIN users u ON u.id = ms.user_id
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(ms.document -> 'venues') = 'array'
         THEN ms.document -> 'venues' ELSE '[]'::jsonb END) AS v
"""


def upgrade() -> None:
    op.create_table(
        "venue_reads",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("chain_head_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chain", sa.Text(), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("venue", sa.Text(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("subaccount", sa.Text(), nullable=True),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["chain_head_id"],
            ["chain_heads.id"],
            name=op.f("fk_venue_reads_chain_head_id_chain_heads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_venue_reads_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "id", name=op.f("pk_venue_reads")),
    )
    op.create_index(
        op.f("ix_venue_reads_chain_head_id_user_id"), "venue_reads", ["chain_head_id", "user_id"]
    )
    op.execute(V_USER_VENUES)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_user_venues")
    op.drop_index(op.f("ix_venue_reads_chain_head_id_user_id"), table_name="venue_reads")
    op.drop_table("venue_reads")
