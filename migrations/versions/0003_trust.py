"""Trust: single-use link/sign-in nonces and hashed operator API keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

`auth_nonces` holds the nonces handed out for signed link and sign-in texts (consumed in the
transaction that links); `api_keys` holds the SHA-256 of each operator API key, never the key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AWARE = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "auth_nonces",
        sa.Column("nonce", sa.Text(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("chain", sa.Text(), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("issued_at", _AWARE, nullable=False),
        sa.Column("expires_at", _AWARE, nullable=False),
        sa.Column("consumed_at", _AWARE, nullable=True),
        sa.CheckConstraint(
            "purpose IN ('link', 'signin')", name=op.f("ck_auth_nonces_purpose_known")
        ),
        sa.CheckConstraint(
            "expires_at > issued_at", name=op.f("ck_auth_nonces_expires_after_issue")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_auth_nonces_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_auth_nonces")),
    )
    op.create_index(op.f("ix_auth_nonces_user_id"), "auth_nonces", ["user_id"])
    op.create_index(op.f("ix_auth_nonces_expires_at"), "auth_nonces", ["expires_at"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("public_id", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("rate_per_minute", sa.Integer(), nullable=True),
        sa.Column("created_at", _AWARE, server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", _AWARE, nullable=True),
        sa.CheckConstraint(
            "scope IN ('read', 'link', 'admin')", name=op.f("ck_api_keys_scope_known")
        ),
        sa.CheckConstraint(
            "rate_per_minute IS NULL OR rate_per_minute > 0", name=op.f("ck_api_keys_rate_positive")
        ),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_api_keys_name_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
        sa.UniqueConstraint("public_id", name=op.f("uq_api_keys_public_id")),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_auth_nonces_expires_at"), table_name="auth_nonces")
    op.drop_index(op.f("ix_auth_nonces_user_id"), table_name="auth_nonces")
    op.drop_table("auth_nonces")
