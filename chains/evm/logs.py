"""Which accounts a block range touched, from its logs: raw `eth_getLogs` and ABI decoding.

The head follower (`aggregator.work.follow`) asks, for a range of blocks, the logs of the
configured token contracts and Aave v3 pools, and turns them into the addresses whose state
they changed:

- ERC-20 `Transfer(address indexed from, address indexed to, uint256 value)` of a configured
  token: `from` and `to` (mints and burns: the zero address is dropped);
- Aave v3 `Pool` events of a configured pool (IPool): `Supply(reserve, user, onBehalfOf, ...)`
  (the position is `onBehalfOf`'s, the tokens `user`'s), `Withdraw(reserve, user, to, amount)`,
  `Borrow(reserve, user, onBehalfOf, ...)`, `Repay(reserve, user, repayer, ...)`,
  `LiquidationCall(collateralAsset, debtAsset, user, ..., liquidator, receiveAToken)`: every
  address in them.

Providers cap `eth_getLogs` by block range or result size and answer with a JSON-RPC error
when a request is over; `read_logs` then halves the range and retries, down to one block, and
keeps the smaller size for the rest of the run. Requests go through the chain's
`EndpointPool` (retries, failover, request counting), decoding through eth_abi.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode
from eth_utils.crypto import keccak

from chains.base import AdapterError
from chains.evm.address import to_checksum
from chains.evm.rpc import EndpointPool, RequestMeter

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True, slots=True)
class EventShape:
    """One event: its signature, and where its account addresses are (indexed topics by
    position after topic0, and the ABI types of its data with the data fields that are
    addresses)."""

    name: str
    signature: str
    address_topics: tuple[int, ...]
    data_types: tuple[str, ...] = ()
    address_fields: tuple[int, ...] = ()

    @property
    def topic0(self) -> str:
        return "0x" + keccak(text=self.signature).hex()


TRANSFER = EventShape("Transfer", "Transfer(address,address,uint256)", (1, 2), ("uint256",))
AAVE_EVENTS = (
    # reserve, onBehalfOf, referralCode indexed; data: user, amount
    EventShape(
        "Supply",
        "Supply(address,address,address,uint256,uint16)",
        (2,),
        ("address", "uint256"),
        (0,),
    ),
    # reserve, user, to indexed; data: amount
    EventShape("Withdraw", "Withdraw(address,address,address,uint256)", (2, 3), ("uint256",)),
    # reserve, onBehalfOf, referralCode indexed; data: user, amount, interestRateMode, borrowRate
    EventShape(
        "Borrow",
        "Borrow(address,address,address,uint256,uint8,uint256,uint16)",
        (2,),
        ("address", "uint256", "uint8", "uint256"),
        (0,),
    ),
    # reserve, user, repayer indexed; data: amount, useATokens
    EventShape("Repay", "Repay(address,address,address,uint256,bool)", (2, 3), ("uint256", "bool")),
    # collateralAsset, debtAsset, user indexed; data: debtToCover, liquidatedCollateralAmount,
    # liquidator, receiveAToken
    EventShape(
        "LiquidationCall",
        "LiquidationCall(address,address,address,uint256,uint256,address,bool)",
        (3,),
        ("uint256", "uint256", "address", "bool"),
        (2,),
    ),
)
_AAVE_BY_TOPIC = {event.topic0: event for event in AAVE_EVENTS}

# Phrases providers use when a range or its result is over their limit (geth, erigon, alchemy,
# infura, quicknode, ankr, anvil's own --max-logs style answers). Matched lowercase.
_RANGE_REFUSALS = (
    "block range",
    "range too",
    "range is too",
    "too large",
    "too many",
    "more than",
    "exceed",
    "response size",
    "limit",
    "-32005",
)


class RangeRefused(AdapterError):
    """Every endpoint refused the range as too large (even one block, when raised by
    `read_logs`)."""


def is_range_refusal(message: str) -> bool:
    """Whether a failed `eth_getLogs` says its range or result was too large (a JSON-RPC
    error), rather than the endpoint being down."""
    text = message.lower()
    return "json-rpc error" in text and any(phrase in text for phrase in _RANGE_REFUSALS)


@dataclass(frozen=True, slots=True)
class LogQuery:
    """What to ask: the token contracts whose `Transfer`s and the pools whose Aave events
    count (checksummed or lowercase addresses)."""

    tokens: tuple[str, ...]
    pools: tuple[str, ...]

    @property
    def addresses(self) -> list[str]:
        return sorted({a.lower() for a in (*self.tokens, *self.pools)})

    @property
    def topics(self) -> list[list[str]]:
        return [[TRANSFER.topic0, *(event.topic0 for event in AAVE_EVENTS)]]

    @property
    def empty(self) -> bool:
        return not self.tokens and not self.pools


@dataclass
class LogRead:
    """The logs of blocks `first`..`last` and how they were read."""

    first: int
    last: int
    logs: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    shrinks: int = 0  # ranges halved after a refusal
    max_blocks: int = 0  # the range size in use at the end (after shrinks)


async def get_logs(
    pool: EndpointPool, meter: RequestMeter, query: LogQuery, first: int, last: int
) -> list[dict[str, Any]]:
    """One `eth_getLogs` over blocks `first`..`last` (inclusive).

    May raise: RangeRefused (the range or result is over the provider's limit), AdapterError.
    """
    params = [
        {
            "fromBlock": hex(first),
            "toBlock": hex(last),
            "address": query.addresses,
            "topics": query.topics,
        }
    ]
    try:
        result = await pool.request("eth_getLogs", params, meter, what=f"logs {first}-{last}")
    except RangeRefused:
        raise
    except AdapterError as exc:
        if is_range_refusal(str(exc)):
            raise RangeRefused(str(exc)) from None
        raise
    if not isinstance(result, list) or not all(isinstance(log, dict) for log in result):
        raise AdapterError(f"{pool.chain}: eth_getLogs {first}-{last} answered {str(result)[:60]}")
    return result


async def read_logs(
    pool: EndpointPool,
    query: LogQuery,
    first: int,
    last: int,
    max_blocks: int,
    meter: RequestMeter | None = None,
) -> LogRead:
    """Every log of `query` in blocks `first`..`last`, in requests of at most `max_blocks`
    blocks; a refused range is halved and retried (down to one block).

    May raise: RangeRefused (a single block refused), AdapterError, ValueError (bad range).
    """
    if max_blocks < 1:
        raise ValueError("max_blocks must be at least 1")
    if last < first:
        raise ValueError(f"empty block range {first}-{last}")
    meter = meter or RequestMeter()
    read = LogRead(first, last, max_blocks=max_blocks)
    start = first
    size = max_blocks
    while start <= last:
        end = min(last, start + size - 1)
        before = meter.count
        try:
            logs = await get_logs(pool, meter, query, start, end)
        except RangeRefused:
            read.requests += meter.count - before
            if end == start:
                raise
            size = max(1, (end - start + 1) // 2)
            read.shrinks += 1
            continue
        read.requests += meter.count - before
        read.logs.extend(logs)
        start = end + 1
    read.max_blocks = size
    return read


def _topic_address(topic: str) -> str:
    return to_checksum(topic[-40:])


def _touched_by(log: dict[str, Any], event: EventShape) -> set[str]:
    """The addresses of one log of `event`. May raise: ValueError (malformed log)."""
    topics = [str(t) for t in log.get("topics") or ()]
    if len(topics) <= max(event.address_topics, default=0):
        raise ValueError(f"{event.name} log with {len(topics)} topics")
    found = {_topic_address(topics[i]) for i in event.address_topics}
    if event.address_fields:
        data = bytes.fromhex(str(log.get("data", "0x"))[2:])
        values = decode(list(event.data_types), data)
        found.update(to_checksum(str(values[i])[-40:]) for i in event.address_fields)
    found.discard(ZERO_ADDRESS)
    return found


def touched_addresses(logs: Iterable[dict[str, Any]], query: LogQuery) -> set[str]:
    """The EIP-55 addresses whose balances or positions the logs changed: `Transfer`s of the
    query's tokens and Aave events of its pools (logs of other contracts, or removed by a
    reorg, are ignored).

    May raise: ValueError (a log of a known event that does not decode).
    """
    tokens = {a.lower() for a in query.tokens}
    pools = {a.lower() for a in query.pools}
    touched: set[str] = set()
    for log in logs:
        if log.get("removed"):
            continue
        emitter = str(log.get("address", "")).lower()
        topics: Sequence[Any] = log.get("topics") or ()
        if not topics:
            continue
        topic0 = str(topics[0]).lower()
        if emitter in tokens and topic0 == TRANSFER.topic0:
            touched |= _touched_by(log, TRANSFER)
        elif emitter in pools and topic0 in _AAVE_BY_TOPIC:
            touched |= _touched_by(log, _AAVE_BY_TOPIC[topic0])
    return touched


def encode_topic_address(address: str) -> str:
    """An address as a 32-byte log topic (for filters and tests)."""
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")
