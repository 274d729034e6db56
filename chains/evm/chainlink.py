"""Chainlink AggregatorV3 prices: `latestRoundData()` and `decimals()` through Multicall3."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Context, Decimal

from chains.base import PriceObservation
from chains.evm.abi import DECIMALS, LATEST_ROUND_DATA, AbiDecodeError, decode_values
from chains.evm.address import address_bytes
from chains.evm.multicall import Call3, CallResult
from chains.evm.plan import SnapshotParts, describe_failure
from chains.evm.spec import ChainlinkFeed

ROUND_DATA_TYPES = ("uint80", "int256", "uint256", "uint256", "uint80")


@dataclass(frozen=True, slots=True)
class RoundData:
    """The decoded `latestRoundData()` tuple."""

    round_id: int
    answer: int
    started_at: int
    updated_at: int
    answered_in_round: int


def decode_round_data(data: bytes) -> RoundData:
    """Decode `latestRoundData()` return data (five 32-byte words).

    May raise: AbiDecodeError.
    """
    if len(data) != 160:
        raise AbiDecodeError(f"latestRoundData returned {len(data)} bytes, expected 160")
    round_id, answer, started_at, updated_at, answered_in_round = decode_values(
        ROUND_DATA_TYPES, data
    )
    return RoundData(round_id, answer, started_at, updated_at, answered_in_round)


def decode_decimals(data: bytes) -> int:
    """Decode `decimals()` (uint8) return data.

    May raise: AbiDecodeError.
    """
    (value,) = decode_values(("uint8",), data)
    return int(value)


def scale_answer(answer: int, decimals: int) -> Decimal:
    """The answer as a Decimal in quote units: 335172810074 with 8 decimals is 3351.72810074.
    Exact for any int256 (the shift runs in a context of 100 digits)."""
    return Decimal(answer).scaleb(-decimals, _EXACT)


_EXACT = Context(prec=100)


def price_observation(
    feed: ChainlinkFeed, round_result: CallResult, decimals_result: CallResult
) -> PriceObservation:
    """A PriceObservation for one feed; invalid (with the reason) when a call failed, the data
    does not decode, the answer is not positive, or the round was never completed."""
    source = f"chainlink:{feed.address}"

    def invalid(reason: str, price: Decimal = Decimal(0), when: int = 0) -> PriceObservation:
        return PriceObservation(
            asset=feed.asset,
            source=source,
            price=price,
            conf=Decimal(0),
            publish_time=when,
            valid=False,
            invalid_reason=reason,
        )

    if not round_result.success or len(round_result.return_data) != 160:
        return invalid(f"latestRoundData failed: {describe_failure(round_result)}")
    if not decimals_result.success or len(decimals_result.return_data) != 32:
        return invalid(f"decimals failed: {describe_failure(decimals_result)}")
    try:
        round_data = decode_round_data(round_result.return_data)
        decimals = decode_decimals(decimals_result.return_data)
    except AbiDecodeError as exc:
        return invalid(f"undecodable feed data: {exc}")
    price = scale_answer(round_data.answer, decimals)
    if round_data.answer <= 0:
        return invalid(f"non-positive answer {round_data.answer}", price, round_data.updated_at)
    if round_data.updated_at == 0:
        return invalid("round not complete (updatedAt is 0)", price, 0)
    # Chainlink publishes no confidence interval: conf is 0 and staleness is checked downstream.
    return PriceObservation(
        asset=feed.asset,
        source=source,
        price=price,
        conf=Decimal(0),
        publish_time=round_data.updated_at,
    )


class ChainlinkSection:
    """Two calls per feed: latestRoundData, then decimals."""

    def __init__(self, feeds: Sequence[ChainlinkFeed]) -> None:
        self._feeds = tuple(feeds)
        calls: list[Call3] = []
        for feed in self._feeds:
            target = address_bytes(feed.address)
            calls.append(Call3(target, LATEST_ROUND_DATA, True))
            calls.append(Call3(target, DECIMALS, True))
        self._calls = calls

    @property
    def calls(self) -> Sequence[Call3]:
        return self._calls

    def collect(self, results: Sequence[CallResult], parts: SnapshotParts) -> None:
        for index, feed in enumerate(self._feeds):
            parts.prices.append(price_observation(feed, results[2 * index], results[2 * index + 1]))
