"""`v_shard_freshness`: one row per (chain, shard) that shard polls have read.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

With `[work] round_polls = "shards"` or `"activity"` a chain is read shard by shard
(`aggregator.polling.shards`), and `v_chain_freshness` shows the chain's newest head of any
kind: one shard whose wallets fail for hours hides behind the others' good polls there. This
view answers per (chain, shard): its newest head that is not orphaned, its last poll, its last
error and the failed polls since its head. A shard that never had a good poll has a row with
NULL head columns. Whole-chain polls are not in it (`v_chain_freshness` has them).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

V_SHARD_FRESHNESS = """
CREATE VIEW v_shard_freshness AS
WITH known AS (
    SELECT DISTINCT chain, shard_index, shard_count FROM poll_runs WHERE shard_count IS NOT NULL
)
SELECT k.chain, k.shard_index, k.shard_count,
       h.height, h.hash AS block_hash, h.block_timestamp, h.finality, h.observed_at,
       now() - h.block_timestamp AS data_age, now() - h.observed_at AS observed_age,
       lp.finished_at AS last_poll_at, lp.ok AS last_poll_ok,
       lf.finished_at AS last_error_at, lf.error AS last_error,
       (SELECT count(*) FROM poll_runs f
         WHERE f.chain = k.chain AND f.shard_count = k.shard_count
           AND f.shard_index = k.shard_index AND NOT f.ok
           AND f.id > coalesce(h.poll_run_id, 0)) AS failures_since_head
FROM known k
LEFT JOIN LATERAL (
    SELECT * FROM chain_heads ch
    WHERE ch.chain = k.chain AND ch.shard_count = k.shard_count
      AND ch.shard_index = k.shard_index AND ch.orphaned_at IS NULL
    ORDER BY ch.id DESC LIMIT 1
) h ON true
LEFT JOIN LATERAL (
    SELECT finished_at, ok FROM poll_runs p
    WHERE p.chain = k.chain AND p.shard_count = k.shard_count AND p.shard_index = k.shard_index
    ORDER BY p.id DESC LIMIT 1
) lp ON true
LEFT JOIN LATERAL (
    SELECT finished_at, error FROM poll_runs p
    WHERE p.chain = k.chain AND p.shard_count = k.shard_count AND p.shard_index = k.shard_index
      AND NOT p.ok
    ORDER BY p.id DESC LIMIT 1
) lf ON true
"""


def upgrade() -> None:
    op.execute(V_SHARD_FRESHNESS)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_shard_freshness")
