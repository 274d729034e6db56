"""The tables. Alembic (migrations/) is the only way they reach a database.

Amounts are exact: NUMERIC(78,0) base units plus decimals (78 digits hold any uint256), prices
and USD figures unconstrained NUMERIC; never floats. Per-user tables have primary keys that start
with `user_id`, so they can later be distributed by it (Citus) without a redesign.

One module per step of the data flow (`base` the declarative base and shared value sets,
`reference`, `observed`, `published`, `trust`, `alerts`, `work`); every name is here too, so
`from aggregator.store import models as m` reads `m.Balance`, `m.MarginStatus`, ...
"""

from __future__ import annotations

from aggregator.store.models.alerts import (
    ALERT_EVENT_KINDS,
    ALERT_EVENT_STATES,
    ALERT_TABLES,
    AlertAttempt,
    AlertEvent,
)
from aggregator.store.models.base import (
    BASE_UNITS,
    FINALITIES,
    NAMING_CONVENTION,
    POSITION_KINDS,
    STATUSES,
    Base,
    check_in,
    table_of,
)
from aggregator.store.models.observed import (
    OBSERVATION_TABLES,
    Balance,
    ChainHead,
    FollowCursor,
    PollRun,
    PollShardCursor,
    PollSweep,
    Position,
    Price,
    VenueRead,
)
from aggregator.store.models.published import MarginStatus, MarginStatusHistory, ValuationMarket
from aggregator.store.models.reference import (
    Asset,
    AssetDeployment,
    Chain,
    PriceSource,
    User,
    Wallet,
)
from aggregator.store.models.trust import (
    API_KEY_SCOPES,
    NONCE_PURPOSES,
    TRUST_TABLES,
    ApiKey,
    AuthNonce,
)
from aggregator.store.models.work import PublishShardMark

ALL_TABLES = tuple(Base.metadata.tables)

__all__ = [
    "ALERT_EVENT_KINDS",
    "ALERT_EVENT_STATES",
    "ALERT_TABLES",
    "ALL_TABLES",
    "API_KEY_SCOPES",
    "BASE_UNITS",
    "FINALITIES",
    "NAMING_CONVENTION",
    "NONCE_PURPOSES",
    "OBSERVATION_TABLES",
    "POSITION_KINDS",
    "STATUSES",
    "TRUST_TABLES",
    "AlertAttempt",
    "AlertEvent",
    "ApiKey",
    "Asset",
    "AssetDeployment",
    "AuthNonce",
    "Balance",
    "Base",
    "Chain",
    "ChainHead",
    "FollowCursor",
    "MarginStatus",
    "MarginStatusHistory",
    "PollRun",
    "PollShardCursor",
    "PollSweep",
    "Position",
    "Price",
    "PriceSource",
    "PublishShardMark",
    "User",
    "ValuationMarket",
    "VenueRead",
    "Wallet",
    "check_in",
    "table_of",
]
