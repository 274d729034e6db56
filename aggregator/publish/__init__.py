"""Publishing: stored observations → one margin status per user.

A pass reads its market (`inputs`, `market`), then per user shard reads the shard's lines
(`inputs`), builds each user's risk-engine portfolio (`portfolios`), values its headline with
the pure engine (`value`), renders the stored row (`render`) and writes what changed in the
shard's own transaction (`write`); `passes.publish` runs the steps in that order, in this
process or on worker processes (`workers`). `documents` renders the full document on read.
"""

from aggregator.publish.passes import PUBLISH_LOCK, PublishReport, publish

__all__ = ["PUBLISH_LOCK", "PublishReport", "publish"]
