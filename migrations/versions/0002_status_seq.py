"""Status versions: a monotonic `seq` per user on the latest status and on every history row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

`seq` is the version of a user's status (the API's ETag, the stream's event id). The latest row
carries the newest; a history row keeps the seq the status had when it was recorded, so the
stream can replay exactly what a client missed. `v_user_margin` gains the column.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_USER_MARGIN = """
CREATE VIEW v_user_margin AS
SELECT u.id AS user_id, u.name AS user_name,
       ms.status, ms.stale, ms.stale_chains, ms.health_factor,
       ms.equity_usd, ms.weighted_collateral_init_usd, ms.weighted_collateral_maint_usd,
       ms.requirement_init_usd, ms.requirement_maint_usd,
       ms.health_init_usd, ms.health_maint_usd, ms.free_collateral_usd,
       ms.as_of, now() - ms.as_of AS age, ms.updated_at, ms.changed_at,
       (SELECT count(*) FROM wallets w WHERE w.user_id = u.id) AS wallet_count{extra}
FROM users u
LEFT JOIN margin_status ms ON ms.user_id = u.id
"""


def upgrade() -> None:
    for table in ("margin_status", "margin_status_history"):
        op.add_column(
            table, sa.Column("seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
    op.create_index(
        "ix_margin_status_history_user_id_seq", "margin_status_history", ["user_id", "seq"]
    )
    op.execute("DROP VIEW v_user_margin")
    op.execute(_USER_MARGIN.format(extra=",\n       ms.seq"))


def downgrade() -> None:
    op.execute("DROP VIEW v_user_margin")
    op.execute(_USER_MARGIN.format(extra=""))
    op.drop_index("ix_margin_status_history_user_id_seq", table_name="margin_status_history")
    for table in ("margin_status_history", "margin_status"):
        op.drop_column(table, "seq")
