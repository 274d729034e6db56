"""The names of the work queue's tasks and of their procrastinate locks.

A job's `lock` lets one job of that name run at a time (across every worker); its
`queueing_lock` lets one wait in the queue at a time, so deferring the same work again while it
waits is refused (`AlreadyEnqueued`): that is what makes a dispatch idempotent. Each unit of
work uses the same string for both, and the same string as the advisory lock the work itself
takes in Postgres (`poll:<chain>`, `poll:<chain>:<i>/<N>`, `follow:<chain>`, `publish:<i>/<N>`),
so one name means one piece of work everywhere.
"""

from __future__ import annotations

from aggregator.polling.shards import shard_lock as shard_lock_of_poll
from aggregator.publish.write import shard_lock
from aggregator.store.observed.observations import ShardKey

POLL = "xmargin.poll"
POLL_SHARD = "xmargin.poll_shard"
FOLLOW = "xmargin.follow"
PUBLISH = "xmargin.publish"
PUBLISH_SHARD = "xmargin.publish_shard"
DELIVER_ALERTS = "xmargin.deliver_alerts"
PRUNE = "xmargin.prune"
DISPATCH = "xmargin.dispatch"
REAP = "xmargin.reap"
REPRICE = "xmargin.reprice"
SWEEP = "xmargin.sweep"

PERIODIC_TASKS = (DISPATCH, REAP)

PUBLISH_LOCK = "publish"
DELIVER_LOCK = "deliver_alerts"
PRUNE_LOCK = "prune"
REPRICE_LOCK = "reprice"


def poll_lock(chain: str) -> str:
    """One chain's poll (the same key as its advisory lock in `polling.poll_chain`)."""
    return f"poll:{chain}"


def publish_shard_lock(index: int, count: int) -> str:
    """One shard of a pass (the same key as its advisory lock, `publish.write.shard_lock`)."""
    return shard_lock(index, count)


def poll_shard_lock(chain: str, index: int, count: int) -> str:
    """One (chain, shard) poll (the same key as its advisory lock in `polling.poll_shard`)."""
    return shard_lock_of_poll(chain, ShardKey(index, count))


def sweep_lock(chain: str) -> str:
    """One chain's sweep (`work.sweep`: its claim of the period is the guard within)."""
    return f"sweep:{chain}"


def follow_lock(chain: str) -> str:
    """One EVM chain's head follower (`work.follow`)."""
    return f"follow:{chain}"
