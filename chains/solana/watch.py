"""Which Solana accounts to watch for a set of wallets, over RPC PubSub, and whose they are.

A watcher wants to hear of every change that moves a linked wallet's lines: its SOL (the wallet
account's lamports), its token balances (its token accounts under SPL Token and Token-2022) and
its venue positions (the Drift users, Kamino obligations and MarginFi accounts the read plan
derives per wallet). Two ways to hear of token balances, picked by the number of wallets:

- owner filters (few wallets): per wallet and token program of a configured mint,
  `programSubscribe` with a `memcmp` on the token owner (offset 32): this sees every token
  account of the wallet, ATAs and others, even ones created after subscribing;
- account subscriptions (many wallets, above `OWNER_FILTER_MAX_WALLETS`): `accountSubscribe` on
  each wallet's associated token accounts for the configured mints, as the read plan derives
  them. A node keeps account subscriptions in a map by address, so a write costs one lookup
  however many there are, while each program subscription's filters are evaluated against every
  account of that program written in a slot: with the token programs writing thousands of
  accounts a slot, thousands of owner filters are what providers throttle or refuse. The cost
  is token accounts that are not ATAs: they are seen by the sweeper only.

The wallet account and the per-wallet venue accounts are `accountSubscribe`d either way. Venue
market accounts (reserves, banks, spot and perp markets) and price feeds are not watched: they
change every slot for every user, and the price path revalues from them.

`WatchConnection` is one websocket through solana-py's `SolanaWsClient`: it subscribes a set
of `Watch`es and turns notifications into the set of wallets they touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

from solana.rpc.commitment import Commitment
from solana.rpc.models import MemcmpOpts
from solana.rpc.websocket_api import SolanaWsClient, Subscription
from solders.pubkey import Pubkey
from solders.rpc.responses import AccountNotification, ProgramNotification

from chains.base import Address
from chains.solana.decoders.spl_token import TOKEN_ACCOUNT_LEN
from chains.solana.plan import build_plan
from chains.solana.spec import SPL_TOKEN_PROGRAM, SolanaChainSpec

OWNER_FILTER_MAX_WALLETS = 100
TOKEN_OWNER_OFFSET = 32
_SUBSCRIBE_IN_FLIGHT = 64  # subscribe requests awaiting their confirmation at once
_LINGER_SECONDS = 0.05
_BATCH_SECONDS = 1.0
_PER_WALLET_ACCOUNTS = ("wallet", "ata", "drift_user", "kamino", "marginfi")


@dataclass(frozen=True, slots=True)
class Watch:
    """One subscription: `accountSubscribe(key)` or, for `kind == "program"`,
    `programSubscribe(key)` filtered on the token owner `wallet`; either way about `wallet`."""

    kind: str  # "account" | "program"
    key: str
    wallet: str


def watch_plan(
    spec: SolanaChainSpec, wallets: Sequence[Address], *, owner_filters: bool | None = None
) -> list[Watch]:
    """The subscriptions that cover `wallets` (invalid addresses are left out: the poll
    reports them). `owner_filters`: force a way (default: by `OWNER_FILTER_MAX_WALLETS`)."""
    plan = build_plan(spec, wallets)
    filters = (
        len(plan.wallets) <= OWNER_FILTER_MAX_WALLETS if owner_filters is None else owner_filters
    )
    watches: list[Watch] = []
    for key in plan.keys:
        role = plan.roles[key]
        if role.wallet is None or role.kind not in _PER_WALLET_ACCOUNTS:
            continue
        if role.kind == "ata" and filters:
            continue
        watches.append(Watch("account", key, role.wallet))
    if filters:
        for wallet, _key in plan.wallets:
            for program in plan.token_programs:
                watches.append(Watch("program", program, wallet))
    return watches


def _filters(watch: Watch) -> list[int | MemcmpOpts]:
    owner = MemcmpOpts(offset=TOKEN_OWNER_OFFSET, bytes=watch.wallet)
    # SPL Token accounts are exactly 165 bytes; Token-2022 ones are longer with extensions.
    return [TOKEN_ACCOUNT_LEN, owner] if watch.key == SPL_TOKEN_PROGRAM else [owner]


class WatchConnection:
    """One PubSub websocket and the watches subscribed on it.

    May raise (from every method): OSError and websockets' `InvalidHandshake` / `InvalidURI`
    (no websocket there), `ConnectionClosed` (the socket dropped), TimeoutError (a request
    unanswered), `SolanaJsonRpcError` (a subscription refused).
    """

    def __init__(self, url: str, commitment: str, *, request_timeout: float = 10.0) -> None:
        self.url = url
        self.commitment = Commitment(commitment)
        self._client = SolanaWsClient(url, request_timeout=request_timeout, open_timeout=10)
        self._watches: dict[int, Watch] = {}  # subscription id → watch
        self._handles: dict[Watch, Subscription] = {}

    async def __aenter__(self) -> WatchConnection:
        await self._client.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.close()

    @property
    def watches(self) -> set[Watch]:
        return set(self._handles)

    async def subscribe(self, watches: Iterable[Watch]) -> int:
        """Subscribe the watches not yet subscribed; how many were added."""
        todo = [watch for watch in dict.fromkeys(watches) if watch not in self._handles]
        for start in range(0, len(todo), _SUBSCRIBE_IN_FLIGHT):
            chunk = todo[start : start + _SUBSCRIBE_IN_FLIGHT]
            handles = await asyncio.gather(*(self._subscribe_one(w) for w in chunk))
            for watch, handle in zip(chunk, handles, strict=True):
                self._handles[watch] = handle
                self._watches[handle.subscription_id] = watch
        return len(todo)

    async def _subscribe_one(self, watch: Watch) -> Subscription:
        if watch.kind == "account":
            return await self._client.account_subscribe(
                pubkey=Pubkey.from_string(watch.key),
                commitment=self.commitment,
                encoding="base64",
            )
        return await self._client.program_subscribe(
            program_id=Pubkey.from_string(watch.key),
            commitment=self.commitment,
            encoding="base64",
            filters=_filters(watch),
        )

    async def unsubscribe(self, watches: Iterable[Watch]) -> int:
        """Cancel the given subscribed watches; how many were cancelled."""
        gone = [watch for watch in set(watches) if watch in self._handles]
        for watch in gone:
            handle = self._handles.pop(watch)
            self._watches.pop(handle.subscription_id, None)
            await self._client.unsubscribe(handle)
        return len(gone)

    async def touched(self, wait_seconds: float) -> set[str]:
        """The wallets touched by the next notification and by those that follow it closely
        (each within `_LINGER_SECONDS`, up to `_BATCH_SECONDS` in all): one refresh for a burst.
        Empty when none came within `wait_seconds`."""
        touched: set[str] = set()
        try:
            self._add(await asyncio.wait_for(self._client.recv(), wait_seconds), touched)
        except TimeoutError:
            return touched
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _BATCH_SECONDS
        while loop.time() < deadline:
            try:
                self._add(await asyncio.wait_for(self._client.recv(), _LINGER_SECONDS), touched)
            except TimeoutError:
                break
        return touched

    def _add(self, notification: object, touched: set[str]) -> None:
        subscription = getattr(notification, "subscription", None)
        watch = self._watches.get(subscription) if isinstance(subscription, int) else None
        if watch is None:
            return  # a late notification of a cancelled subscription
        if isinstance(notification, ProgramNotification):
            # The filter names the owner; the account's own bytes must agree.
            data = bytes(notification.result.value.account.data)
            owner = data[TOKEN_OWNER_OFFSET : TOKEN_OWNER_OFFSET + 32]
            if len(owner) != 32 or str(Pubkey.from_bytes(owner)) != watch.wallet:
                return
        elif not isinstance(notification, AccountNotification):
            return
        touched.add(watch.wallet)
