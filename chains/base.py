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


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """Several URLs for one chain: each call tries them in order with timeout and retries."""

    urls: tuple[str, ...]
    timeout_seconds: float = 10.0
    retries: int = 2  # extra attempts per URL before failing over
    backoff_seconds: float = 0.2  # base of the jittered exponential backoff
