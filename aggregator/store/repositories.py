"""The doors to the database, in one import. Each lives in a module per resource."""

from __future__ import annotations

from aggregator.store.accounts.users import (
    UserRow,
    WalletRow,
    add_user,
    get_user,
    link_wallet,
    list_users,
    owner_map,
    unlink_wallet,
    wallet_owner,
    wallets_by_chain,
    wallets_of_user,
)
from aggregator.store.errors import UnknownUser, UserExists, WalletTaken
from aggregator.store.locks import held_lock, lock_id, try_advisory_lock
from aggregator.store.observed.observation_reads import latest_observations, price_history
from aggregator.store.observed.observations import (
    ChainObservations,
    OwnedBalance,
    OwnedPosition,
    record_poll_failure,
    record_snapshot,
)
from aggregator.store.observed.pruning import PruneResult, prune_observations
from aggregator.store.published.status_reads import get_status, status_history
from aggregator.store.published.statuses import (
    STATUS_CHANNEL,
    StatusRecord,
    changed_materially,
    publish_statuses,
)
from aggregator.store.reference import sync_reference_data

__all__ = [
    "STATUS_CHANNEL",
    "ChainObservations",
    "OwnedBalance",
    "OwnedPosition",
    "PruneResult",
    "StatusRecord",
    "UnknownUser",
    "UserExists",
    "UserRow",
    "WalletRow",
    "WalletTaken",
    "add_user",
    "changed_materially",
    "get_status",
    "get_user",
    "held_lock",
    "latest_observations",
    "link_wallet",
    "list_users",
    "lock_id",
    "owner_map",
    "price_history",
    "prune_observations",
    "publish_statuses",
    "record_poll_failure",
    "record_snapshot",
    "status_history",
    "sync_reference_data",
    "try_advisory_lock",
    "unlink_wallet",
    "wallet_owner",
    "wallets_by_chain",
    "wallets_of_user",
]
