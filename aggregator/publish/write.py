"""Step 5 of a pass: every status written in one transaction under the publish lock (history
rows, NOTIFY and alert events on material change: `aggregator.store.statuses`)."""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.config import LoadedConfig
from aggregator.store.database import Database
from aggregator.store.locks import try_advisory_lock
from aggregator.store.statuses import StatusRecord, publish_statuses

PUBLISH_LOCK = "publish"


async def write_statuses(
    database: Database, config: LoadedConfig, records: Sequence[StatusRecord]
) -> int | None:
    """Write a pass's statuses; how many changed materially, or None when another process
    holds the publish lock (nothing written).

    May raise: DatabaseUnavailable.
    """
    async with database.session() as session:
        if not await try_advisory_lock(session, PUBLISH_LOCK):
            return None
        return await publish_statuses(
            session,
            records,
            relative_threshold=config.risk.history_material_change,
            webhooks=config.alerts.webhooks,
        )
