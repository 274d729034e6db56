"""A poll as a list of read sections: each adds aggregate3 calls and turns their results into
snapshot lines. The adapter concatenates the calls of every section, runs them at the pinned
block, and hands each section back exactly the results of its own calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from chains.base import LineIssue, Position, PriceObservation, TokenBalance, VenueAccount
from chains.evm.multicall import Call3, CallResult


@dataclass(slots=True)
class SnapshotParts:
    """The lines of a snapshot while it is being assembled."""

    balances: list[TokenBalance] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    prices: list[PriceObservation] = field(default_factory=list)
    issues: list[LineIssue] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    venue_accounts: list[VenueAccount] = field(default_factory=list)


class ReadSection(Protocol):
    """One kind of line (balances, oracle prices, a lending venue)."""

    @property
    def calls(self) -> Sequence[Call3]:
        """The aggregate3 calls this section needs, in the order `collect` expects."""
        ...

    def collect(self, results: Sequence[CallResult], parts: SnapshotParts) -> None:
        """Turn this section's results (same order and length as `calls`) into lines."""
        ...


def describe_failure(result: CallResult) -> str:
    """A short reason for a failed or empty inner call, for a LineIssue message."""
    if not result.success:
        detail = f" (0x{result.return_data[:36].hex()})" if result.return_data else ""
        return "call reverted" + detail
    if not result.return_data:
        return "call returned no data (no contract at that address?)"
    return f"call returned {len(result.return_data)} bytes, not the expected shape"
