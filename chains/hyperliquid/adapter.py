"""`HyperliquidAdapter`: perp and spot state of a set of accounts from Hyperliquid's info API.

A poll is `metaAndAssetCtxs` once (marks, oracle prices, size decimals, margin tables), then per
account `clearinghouseState` and `spotClearinghouseState` (and `userAbstraction` when its cached
mode is older than `abstraction_ttl_seconds`), concurrently, under each URL's weight budget.
Accounts are read oldest data first; those the budget (or a 429, or a failing URL) leaves
unread on every URL keep the lines of their last read, and the poll says so in its issues (a new
process gets the last reads from the store through `KeepsLastReads`, see
aggregator/polling/poll.py). Each account with perp positions also gives one `VenueAccount`
(`ChainSnapshot.venue_accounts`, built by chains/hyperliquid/venues.py from the same
`clearinghouseState` as its lines; an account kept from an earlier read keeps that read's).

HyperCore has no blocks to pin. The read point is the info responses' `time`: height = the
newest `time` (ms) of the accounts in the snapshot, timestamp = the oldest one (seconds), so the
latency buffer and staleness count from the oldest data the snapshot holds; block_hash is
`hypercore-time:<height>`; finality `latest`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from chains.base import (
    AdapterError,
    Address,
    ChainSnapshot,
    LineIssue,
    Position,
    ReadPoint,
    TokenBalance,
)
from chains.endpoints import EndpointHealth, order_for_attempt
from chains.evm.address import EvmAddressError, normalize_evm_address
from chains.hyperliquid.budget import WeightBudget
from chains.hyperliquid.decoders import (
    KNOWN_ABSTRACTIONS,
    DecodeError,
    PerpMarkets,
    decode_clearinghouse_state,
    decode_meta_and_asset_ctxs,
    decode_spot_state,
    decode_user_abstraction,
)
from chains.hyperliquid.info import (
    BudgetSpent,
    GarbageResponse,
    InfoEndpoint,
    InfoFailure,
    RateLimited,
)
from chains.hyperliquid.lines import UserRead, market_prices, user_lines
from chains.hyperliquid.spec import (
    WEIGHT_CLEARINGHOUSE_STATE,
    WEIGHT_META_AND_ASSET_CTXS,
    WEIGHT_PER_USER,
    WEIGHT_SPOT_CLEARINGHOUSE_STATE,
    WEIGHT_USER_ABSTRACTION,
    HyperliquidChainSpec,
)
from chains.hyperliquid.venues import venue_account

BUDGET_REASON = "weight budget"
RATE_LIMITED_REASON = "rate limited"


def _iso(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).isoformat(timespec="milliseconds")


def _spent_reason(endpoint: InfoEndpoint) -> str:
    """Why `endpoint` took no more accounts: its budget is spent, or closed after a 429."""
    if endpoint.budget.closed:
        return f"{RATE_LIMITED_REASON} by {endpoint.url}: backing off after HTTP 429"
    return f"{BUDGET_REASON} of {endpoint.url}"


class _Poll:
    """What one poll has gathered so far."""

    def __init__(self) -> None:
        self.fresh: dict[str, UserRead] = {}
        self.unread: dict[str, str] = {}  # account → why it was not read
        self.issues: list[LineIssue] = []


class HyperliquidAdapter:
    """Reads one HyperCore network; implements `chains.base.ChainAdapter`."""

    def __init__(self, spec: HyperliquidChainSpec) -> None:
        if not spec.endpoints.urls:
            raise ValueError("an endpoint policy needs at least one URL")
        self.spec = spec
        self.chain = spec.chain
        self.caip2 = spec.caip2
        self._health = {url: EndpointHealth(url) for url in spec.endpoints.urls}
        self.endpoints = [
            InfoEndpoint(
                url,
                spec.endpoints,
                self._health[url],
                WeightBudget(spec.weight_per_minute, spec.budget_window_seconds),
            )
            for url in spec.endpoints.urls
        ]
        self._last: dict[str, UserRead] = {}  # each account's last good read
        self._modes: dict[str, tuple[str, float]] = {}  # account → (mode, monotonic read time)
        self._restored = False

    @property
    def needs_last_reads(self) -> bool:
        """True until the poller has handed over the stored lines (`KeepsLastReads`)."""
        return not self._restored

    def restore_last_reads(
        self, balances: Sequence[TokenBalance], positions: Sequence[Position], read_at: int
    ) -> None:
        """Take stored lines as each account's last read, dated `read_at` (the stored head's
        time, its oldest data). Reads this process made itself win. May raise: nothing."""
        self._restored = True
        grouped: dict[str, tuple[list[TokenBalance], list[Position]]] = {}
        for balance in balances:
            grouped.setdefault(balance.account, ([], []))[0].append(balance)
        for position in positions:
            grouped.setdefault(position.account, ([], []))[1].append(position)
        for account, (held, open_positions) in grouped.items():
            if account not in self._last:
                self._last[account] = UserRead(
                    Address(account), read_at * 1000, tuple(held), tuple(open_positions), ()
                )

    @property
    def endpoint_health(self) -> dict[str, EndpointHealth]:
        """Per-URL health record (successes, failures, last error, latency)."""
        return self._health

    async def aclose(self) -> None:
        """May raise: nothing."""
        for endpoint in self.endpoints:
            await endpoint.aclose()

    def _request_total(self) -> int:
        return sum(endpoint.request_count for endpoint in self.endpoints)

    async def snapshot(self, wallets: Sequence[Address]) -> ChainSnapshot:
        """Read every account's perp and spot lines and the configured prices.

        May raise: AdapterError (metaAndAssetCtxs failed on every endpoint).
        """
        poll = _Poll()
        accounts = self._accounts(wallets, poll)
        before = self._request_total()
        ordered = [self.endpoints[i] for i in order_for_attempt(list(self._health.values()))]
        markets: PerpMarkets | None = None
        served: InfoEndpoint | None = None
        failures: list[str] = []
        pending = sorted(accounts, key=lambda a: self._last[a].time_ms if a in self._last else -1)
        for endpoint in ordered:
            if markets is None:
                try:
                    markets = await self._markets(endpoint)
                except InfoFailure as failure:
                    failures.append(f"{endpoint.url}: {failure}")
                    continue
                served = endpoint
            pending = await self._read_users(endpoint, pending, markets, poll)
            if not pending:
                break
        if markets is None or served is None:
            raise AdapterError(f"{self.chain}: every endpoint failed: " + "; ".join(failures))
        reads = self._settle(accounts, poll)
        now_ms = int(time.time() * 1000)
        times = [read.time_ms for read in reads]
        height = max(times) if times else now_ms
        fresh_times = [read.time_ms for read in poll.fresh.values()]
        publish_time = (max(fresh_times) if fresh_times else now_ms) // 1000
        return ChainSnapshot(
            chain=self.chain,
            caip2=self.caip2,
            read_point=ReadPoint(
                height, f"hypercore-time:{height}", min(times, default=height) // 1000, "latest"
            ),
            balances=tuple(b for read in reads for b in read.balances),
            positions=tuple(p for read in reads for p in read.positions),
            venue_accounts=tuple(
                read.venue_account for read in reads if read.venue_account is not None
            ),
            prices=market_prices(self.spec, markets, publish_time),
            issues=tuple(poll.issues),
            request_count=self._request_total() - before,
            endpoint=served.url,
            extra={
                "accounts_read": str(len(poll.fresh)),
                "accounts_kept_from_earlier": str(len(reads) - len(poll.fresh)),
                "accounts_not_read": str(len(poll.unread)),
            },
        )

    def _accounts(self, wallets: Sequence[Address], poll: _Poll) -> list[Address]:
        out: list[Address] = []
        for wallet in wallets:
            try:
                normalize_evm_address(wallet, require_checksum=False)
            except EvmAddressError as error:
                poll.issues.append(LineIssue(wallet, f"not an EVM address: skipped ({error})"))
                continue
            out.append(wallet)
        return out

    async def _markets(self, endpoint: InfoEndpoint) -> PerpMarkets:
        # A budget spent by the previous poll frees within one window: wait for it rather
        # than fail the poll (the accounts' reads then pace themselves, see `_reserve`).
        wait = endpoint.budget.seconds_until(WEIGHT_META_AND_ASSET_CTXS)
        if wait > 0:
            await asyncio.sleep(min(wait, self.spec.budget_window_seconds))
        doc = await endpoint.post({"type": "metaAndAssetCtxs"}, WEIGHT_META_AND_ASSET_CTXS)
        try:
            return decode_meta_and_asset_ctxs(doc)
        except DecodeError as error:
            endpoint.health.record_failure(str(error), 0.0)
            raise GarbageResponse(f"metaAndAssetCtxs: {error}") from None

    async def _reserve(self, endpoint: InfoEndpoint, weight: int) -> bool:
        """Spend `weight` now, or once the window frees it if that is within
        `budget_wait_seconds` (so a poll keeps the pace the budget allows instead of stopping
        at the first refusal); False when it would take longer."""
        while not endpoint.budget.try_spend(weight):
            wait = endpoint.budget.seconds_until(weight)
            if endpoint.budget.closed or wait > self.spec.budget_wait_seconds:
                return False
            await asyncio.sleep(max(wait, 0.001))
        return True

    def _mode_due(self, account: str) -> bool:
        if not self.spec.read_abstraction:
            return False
        known = self._modes.get(account.lower())
        return known is None or time.monotonic() - known[1] > self.spec.abstraction_ttl_seconds

    async def _read_users(
        self, endpoint: InfoEndpoint, accounts: list[Address], markets: PerpMarkets, poll: _Poll
    ) -> list[Address]:
        """Read `accounts` on `endpoint`; the ones left for another endpoint come back."""
        gate = asyncio.Semaphore(self.spec.concurrent_users)
        stopped: list[str] = []  # why this endpoint takes no more accounts this poll

        async def one(account: Address) -> Address | None:
            async with gate:
                if stopped:
                    poll.unread[account] = stopped[0]
                    return account
                due = self._mode_due(account)
                weight = WEIGHT_PER_USER + (WEIGHT_USER_ABSTRACTION if due else 0)
                if not await self._reserve(endpoint, weight):
                    stopped.append(_spent_reason(endpoint))
                    poll.unread[account] = stopped[0]
                    return account
                try:
                    try:
                        await self._read_one(endpoint, account, due, markets, poll)
                    finally:
                        endpoint.budget.settle(weight)
                except BudgetSpent:
                    stopped.append(_spent_reason(endpoint))
                except RateLimited as limited:
                    stopped.append(f"{RATE_LIMITED_REASON} by {endpoint.url}: {limited}")
                except GarbageResponse as garbage:
                    stopped.append(f"{endpoint.url}: {garbage}")
                except InfoFailure as failure:
                    poll.unread[account] = f"{endpoint.url}: {failure}"
                    return account
                else:
                    return None
                poll.unread[account] = stopped[-1]
                return account

        left = await asyncio.gather(*(one(account) for account in accounts))
        return [account for account in left if account is not None]

    async def _read_one(
        self, endpoint: InfoEndpoint, account: Address, due: bool, markets: PerpMarkets, poll: _Poll
    ) -> None:
        user = account.lower()
        if due:
            doc = await endpoint.post(
                {"type": "userAbstraction", "user": user}, WEIGHT_USER_ABSTRACTION, prepaid=True
            )
            try:
                mode = decode_user_abstraction(doc)
            except DecodeError as error:
                poll.unread[account] = f"response refused: {error}"
                return
            self._modes[user] = (mode, time.monotonic())
        perp_doc, spot_doc = await asyncio.gather(
            endpoint.post(
                {"type": "clearinghouseState", "user": user},
                WEIGHT_CLEARINGHOUSE_STATE,
                prepaid=True,
            ),
            endpoint.post(
                {"type": "spotClearinghouseState", "user": user},
                WEIGHT_SPOT_CLEARINGHOUSE_STATE,
                prepaid=True,
            ),
        )
        try:
            perp = decode_clearinghouse_state(perp_doc)
            spot = decode_spot_state(spot_doc)
        except DecodeError as error:
            poll.unread[account] = f"response refused: {error}"
            return
        mode = self._modes.get(user, ("default", 0.0))[0]
        if mode not in KNOWN_ABSTRACTIONS:
            poll.issues.append(
                LineIssue(account, f"unknown account mode {mode!r}: read as separate balances")
            )
        time_ms = perp.time_ms if perp.time_ms is not None else int(time.time() * 1000)
        poll.unread.pop(account, None)
        lines = user_lines(self.spec, account, perp, spot, markets, mode, time_ms)
        venue = venue_account(self.spec, account, perp, markets, mode)
        poll.fresh[account] = replace(lines, venue_account=venue)

    def _settle(self, accounts: list[Address], poll: _Poll) -> list[UserRead]:
        """The reads the snapshot holds: fresh ones, and for unread accounts their last one."""
        reads: list[UserRead] = []
        budget_cut = 0
        for account in accounts:
            fresh = poll.fresh.get(account)
            if fresh is not None:
                self._last[account] = fresh
                reads.append(fresh)
                poll.issues.extend(fresh.issues)
                continue
            why = poll.unread.get(account, "not read")
            budget_cut += why.startswith((BUDGET_REASON, RATE_LIMITED_REASON))
            last = self._last.get(account)
            if last is None:
                poll.issues.append(
                    LineIssue(account, f"not read this poll ({why}); no earlier data")
                )
                continue
            reads.append(last)
            poll.issues.append(
                LineIssue(
                    account,
                    f"not read this poll ({why}); its lines read at {_iso(last.time_ms)} are kept",
                )
            )
        if budget_cut:
            poll.issues.insert(
                0,
                LineIssue(
                    self.chain,
                    f"poll cut short by the weight budget (or 429s): {budget_cut} of "
                    f"{len(accounts)} accounts not read (they keep their last data, marked older)",
                ),
            )
        return reads
