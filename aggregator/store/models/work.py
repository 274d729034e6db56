"""The work queue's own rows: one per publish shard written by a queued pass."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from aggregator.store.models.base import Base


class PublishShardMark(Base):
    """One shard of one queued publish pass, written in the shard's own transaction: the
    fence that keeps a duplicate or retried shard job from writing the shard twice
    (`aggregator.work.fence`). `pass_key` names the pass (its publish job)."""

    __tablename__ = "publish_shard_marks"

    pass_key: Mapped[str] = mapped_column(primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    shards: Mapped[int] = mapped_column(Integer, primary_key=True)
    market_id: Mapped[int] = mapped_column(BigInteger)
    published_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)

    __table_args__ = (CheckConstraint("shard >= 0 AND shard < shards", name="shard_in_range"),)
