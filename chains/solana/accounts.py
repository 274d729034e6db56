"""The raw accounts of one Solana read, and the lines being assembled from them.

`decoded` reads an account for a line (a bad account becomes a `LineIssue` naming it);
`venue_read` and `oracle_read` read one for the venue view only (a bad account is a reason
string, no issue: see `chains.solana.lines`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from chains.base import LineIssue, Position, PriceObservation, TokenBalance, VenueAccount
from chains.solana import venues
from chains.solana.decoders import AccountDecodeError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawAccount:
    owner: str
    lamports: int
    data: bytes


@dataclass(slots=True)
class Lines:
    balances: list[TokenBalance] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    prices: list[PriceObservation] = field(default_factory=list)
    issues: list[LineIssue] = field(default_factory=list)
    venue_accounts: list[VenueAccount] = field(default_factory=list)


def venue_read(
    key: str, name: str, account: RawAccount | None, owner: str, read: Callable[[bytes], T]
) -> T | str:
    """`read(account.data)`, or why it could not be had (no issue: see the module docstring)."""
    if account is None:
        return f"{name} {key}: account not found"
    if account.owner != owner:
        return f"{name} {key}: owned by {account.owner}, not the program"
    try:
        return read(account.data)
    except AccountDecodeError as error:
        return f"{name} {key}: {error}"


def oracle_read(account: RawAccount | None, drift_program: str | None) -> venues.OraclePrice | str:
    if account is None:
        return "oracle account not found"
    try:
        return venues.read_oracle(account, drift_program)
    except AccountDecodeError as error:
        return str(error)


def decoded(
    key: str,
    name: str,
    account: RawAccount | None,
    owner: str,
    decode: Callable[[bytes], T],
    lines: Lines,
) -> T | None:
    """`decode(account.data)` when the account exists and `owner` owns it; otherwise None, with
    an issue naming the account and what was wrong."""
    if account is None:
        lines.issues.append(LineIssue(key, f"{name}: account not found"))
        return None
    if account.owner != owner:
        lines.issues.append(LineIssue(key, f"{name} owned by {account.owner}, not the program"))
        return None
    try:
        return decode(account.data)
    except AccountDecodeError as error:
        lines.issues.append(LineIssue(key, f"{name}: {error}"))
        return None
