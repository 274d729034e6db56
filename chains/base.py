"""The adapter protocol and the snapshot types every chain family returns.

An adapter reads the wallets of one chain at one pinned block or slot and returns one
`ChainSnapshot`. Amounts are integers in base units plus decimals; prices are `Decimal`.
Nothing here imports the valuation layer or the store: data flows one way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, NewType, Protocol, runtime_checkable

from chains.endpoints import EndpointHealth

Address = NewType("Address", str)
"""An account as the chain spells it: EIP-55 for EVM, base58 for Solana."""

Finality = Literal["finalized", "safe", "confirmed", "latest"]
PositionKind = Literal["deposit", "borrow", "perp"]


class AdapterError(Exception):
    """A poll could not produce a snapshot (every endpoint failed, garbage response, revert).

    The message names the chain and what failed; the caller keeps the last good data.
    """


@dataclass(frozen=True, slots=True)
class ReadPoint:
    """The one block or slot a snapshot was read at."""

    height: int
    block_hash: str
    timestamp: int  # unix seconds of the block (Solana: the slot's block time)
    finality: Finality
    parent_hash: str | None = None  # the parent block's hash, where the chain says (EVM)


@dataclass(frozen=True, slots=True)
class HeadCheck:
    """What the chain says now, in the same read as a new pin, about a height read before.

    `block_hash` is the canonical block's hash at `height` (None when the read does not say:
    no block there yet on this node, or a family that answers by slot only); `skipped` is True
    when the chain says for certain that no block at `height` is canonical (a Solana slot that
    `finalized` skipped). A stored head whose hash differs, or whose height is skipped, is
    orphaned.
    """

    height: int
    block_hash: str | None
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class TokenBalance:
    """A wallet balance of one asset (native or token), exact in base units."""

    account: Address
    asset: str  # asset symbol from config
    amount_raw: int
    decimals: int
    token_address: str | None = None  # contract / mint; None for the native coin
    holder: str | None = None  # the token account that holds it (Solana), when not the wallet


@dataclass(frozen=True, slots=True)
class Position:
    """A protocol position: a lending deposit or borrow, or a perp.

    `amount_raw` is signed: deposits positive, borrows negative; for perps the signed base
    amount (long positive). `entry_price` is set for perps only.
    """

    account: Address
    venue: str  # e.g. "aave_v3:main", "drift", "kamino"
    asset: str
    kind: PositionKind
    amount_raw: int
    decimals: int
    entry_price: Decimal | None = None
    market: str | None = None  # venue-specific market id (perp market index, reserve address)


@dataclass(frozen=True, slots=True)
class PriceObservation:
    """An oracle price read at the snapshot's read point.

    `valid` is False when a check failed (owner, feed id, confidence, age, non-positive
    answer); `invalid_reason` says which. An invalid price is never silently used.
    """

    asset: str
    source: str  # "chainlink:0x…", "pyth:<account>"
    price: Decimal
    conf: Decimal
    publish_time: int
    valid: bool = True
    invalid_reason: str | None = None


@dataclass(frozen=True, slots=True)
class LineIssue:
    """One account or line that could not be read; it is skipped and recorded, nothing else lost."""

    subject: str  # the account, mint or feed it concerns
    message: str


@dataclass(frozen=True, slots=True)
class VenueAsset:
    """One asset of a venue account as the venue itself counts it (design §7a).

    `amount_raw` is signed in the asset's base units: collateral or a long positive, a debt or
    a short negative. `price` is the venue's own price of one unit in USD (its oracle), None
    when the venue has none. `params` are the venue's parameters for this asset's market, as
    exact decimal strings under the keys its rules module documents (`aggregator.venues`).
    """

    asset: str
    amount_raw: int
    decimals: int
    price: Decimal | None
    params: Mapping[str, str] = field(default_factory=dict)
    market: str | None = None  # the venue's market id (reserve, bank, perp market, coin)


@dataclass(frozen=True, slots=True)
class VenueAccount:
    """A venue account's own margin inputs, read at the snapshot's read point.

    `rules` names the venue math that applies ("aave_v3", "drift", "kamino", "marginfi",
    "hyperliquid"); `params` holds account-level parameters and `reported` the numbers the venue
    publishes itself (for example Aave's `health_factor_wad`), both as exact decimal strings.
    `problem` says why the venue's parameters could not be read or are out of range: the venue
    line then says so and no health is computed from it.
    """

    account: Address  # the wallet that owns it
    venue: str  # as positions name it: "aave_v3:main", "drift", "kamino:main", ...
    rules: str
    assets: tuple[VenueAsset, ...] = ()
    params: Mapping[str, str] = field(default_factory=dict)
    reported: Mapping[str, str] = field(default_factory=dict)
    subaccount: str | None = None  # the venue's own account id, when not the wallet
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class ChainSnapshot:
    """Everything read from one chain at one read point."""

    chain: str  # config key, e.g. "ethereum"
    caip2: str  # e.g. "eip155:1"
    read_point: ReadPoint
    balances: tuple[TokenBalance, ...] = ()
    positions: tuple[Position, ...] = ()
    prices: tuple[PriceObservation, ...] = ()
    issues: tuple[LineIssue, ...] = ()
    request_count: int = 0
    endpoint: str | None = None  # the URL that served the read
    extra: dict[str, str] = field(default_factory=dict)
    head_checks: tuple[HeadCheck, ...] = ()  # answers for the heights asked to be re-checked
    venue_accounts: tuple[VenueAccount, ...] = ()  # venues' own parameters and numbers


@runtime_checkable
class ChainAdapter(Protocol):
    """One chain's reader. Implementations live in chains/<family>/.

    `snapshot` reads every wallet at a single pinned read point and either returns a complete
    snapshot or raises AdapterError; it never returns half of one.
    """

    chain: str
    caip2: str

    @property
    def endpoint_health(self) -> Mapping[str, EndpointHealth]:
        """Per-URL record of what each configured endpoint has done (read-only view)."""
        ...

    async def snapshot(self, wallets: Sequence[Address]) -> ChainSnapshot:
        """Read all configured balances, positions and prices for `wallets`.

        May raise: AdapterError.
        """
        ...

    async def aclose(self) -> None:
        """Release network clients."""
        ...


@runtime_checkable
class HeadRechecking(Protocol):
    """An adapter that re-reads, in the same request as its new pin, the canonical block at
    heights read before, so the store can orphan heads a reorg replaced (EVM, Solana)."""

    async def snapshot_rechecking(
        self, wallets: Sequence[Address], heights: Sequence[int]
    ) -> ChainSnapshot:
        """`snapshot(wallets)` whose `head_checks` answer for each of `heights`.

        May raise: AdapterError.
        """
        ...


@runtime_checkable
class KeepsLastReads(Protocol):
    """An adapter that may leave accounts unread in a poll (a venue's weight budget:
    Hyperliquid) and carries their last lines over, marked older. A new process has no last
    reads in memory: the poller hands it the stored ones once, before its first poll."""

    @property
    def needs_last_reads(self) -> bool:
        """True until `restore_last_reads` has been called."""
        ...

    def restore_last_reads(
        self, balances: Sequence[TokenBalance], positions: Sequence[Position], read_at: int
    ) -> None:
        """Take the stored lines of the last good poll, read at `read_at` (unix seconds) at
        the latest, as each account's last read. May raise: nothing."""
        ...


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """Several URLs for one chain: each call tries them in order with timeout and retries."""

    urls: tuple[str, ...]
    timeout_seconds: float = 10.0
    retries: int = 2  # extra attempts per URL before failing over
    backoff_seconds: float = 0.2  # base of the jittered exponential backoff
