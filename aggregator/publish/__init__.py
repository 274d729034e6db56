"""Publishing: stored observations → one margin status per user.

A pass reads its inputs (`inputs`), builds each user's risk-engine portfolio (`portfolios`),
values it with the pure engine (`value`), renders the status document and its row (`render`)
and writes them in one transaction (`write`); `passes.publish` runs the steps in that order.
"""

from aggregator.publish.passes import PUBLISH_LOCK, PublishReport, publish

__all__ = ["PUBLISH_LOCK", "PublishReport", "publish"]
