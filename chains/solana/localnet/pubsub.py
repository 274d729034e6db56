"""The localnet's RPC PubSub endpoint: Solana's websocket subscriptions over a `Ledger`.

Methods: `accountSubscribe` / `accountUnsubscribe` and `programSubscribe` /
`programUnsubscribe`, on Solana's wire format: a subscribe answers the subscription id
(`{"jsonrpc":"2.0","result":<id>,"id":<request id>}`), an unsubscribe answers `true` (or
`false` for an unknown id), and a change is pushed as

    {"jsonrpc":"2.0","method":"accountNotification",
     "params":{"result":{"context":{"slot":S},"value":<UiAccount>},"subscription":<id>}}
    {"jsonrpc":"2.0","method":"programNotification",
     "params":{"result":{"context":{"slot":S},"value":{"pubkey":P,"account":<UiAccount>}},
               "subscription":<id>}}

with the account rendered as `getAccountInfo` renders it (`encoding` base64, the default here,
or base58; `dataSlice`). `programSubscribe` takes `getProgramAccounts`' `dataSize` and `memcmp`
filters (at most four). An account that no longer exists is notified as Solana does: zero
lamports, no data, owned by the system program (program subscriptions then no longer match).

When: a subscription at `commitment` (default `finalized`, as a node's) is told of an account
once a write that changed its lamports, data or owner becomes visible at that commitment:
`processed` at the write itself, `confirmed` / `finalized` when the slot clock has moved the
commitment's slot past the write's slot. Writes that cancel out before they become visible
notify nothing. Every write the localnet makes goes through the ledger (the SPL programs'
transactions, airdrops, raw-layout accounts), so every change is seen.

The server runs its own asyncio loop on a daemon thread; the ledger's listeners (called under
the ledger lock, on whichever thread wrote) hand ready notification texts to the connection's
queue with `call_soon_threadsafe`. `drop_connections` aborts every socket without a closing
handshake, as a node restart or a load balancer would, for reconnect tests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from chains.solana.localnet.ledger import COMMITMENTS, AccountVersion, Ledger
from chains.solana.localnet.server import (
    JSON,
    RpcError,
    RpcMethods,
    _config,
    _error_text,
    _program_filter,
)

MAX_FILTERS = 4
SYSTEM_PROGRAM = "11111111111111111111111111111111"


@dataclass(eq=False)
class _Client:
    """One websocket connection: its outgoing queue, on the server's loop."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[str]
    connection: ServerConnection
    subscriptions: set[int] = field(default_factory=set)

    def push(self, text: str) -> None:
        """Queue `text` from any thread."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, text)
        except RuntimeError:  # the loop is closed: the server stopped
            pass


@dataclass(eq=False)
class _Subscription:
    id: int
    kind: str  # "account" | "program"
    key: str  # the account, or the program
    commitment: str
    config: JSON
    tests: list[Callable[[bytes], bool]]
    client: _Client


class PubSubServer:
    """The websocket endpoint in a daemon thread; `url` is ready once constructed."""

    def __init__(self, ledger: Ledger, host: str = "127.0.0.1", port: int = 0) -> None:
        self.ledger = ledger
        self._socket = socket.create_server((host, port))
        self.port = int(self._socket.getsockname()[1])
        self.url = f"ws://{host}:{self.port}"
        self._ids = itertools.count(1)
        self._subscriptions: dict[int, _Subscription] = {}
        self._by_account: dict[str, set[int]] = defaultdict(set)
        self._by_program: dict[str, set[int]] = defaultdict(set)
        # Accounts changed per slot, until every lagging commitment has seen that slot.
        self._changed: dict[int, set[str]] = defaultdict(set)
        self._seen = {c: ledger.slot_for(c) for c in COMMITMENTS}
        self._clients: set[_Client] = set()
        self._loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"local-solana-pubsub:{self.port}", daemon=True
        )
        self.calls: dict[str, int] = defaultdict(int)  # requests served, per method

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Serve (idempotent)."""
        if self._thread.is_alive():
            return
        with self.ledger.lock:
            self._seen = {c: self.ledger.slot_for(c) for c in COMMITMENTS}
            self.ledger.change_listeners.append(self._account_changed)
            self.ledger.slot_listeners.append(self._slot_advanced)
        self._thread.start()
        self._ready.wait(timeout=10)

    def stop(self) -> None:
        with self.ledger.lock:
            if self._account_changed in self.ledger.change_listeners:
                self.ledger.change_listeners.remove(self._account_changed)
            if self._slot_advanced in self.ledger.slot_listeners:
                self.ledger.slot_listeners.remove(self._slot_advanced)
        if self._thread.is_alive() and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout=10)
        self._socket.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        async with serve(self._serve, sock=self._socket, close_timeout=1, ping_interval=None):
            self._ready.set()
            await self._stopping.wait()

    # for tests -------------------------------------------------------------------------------
    def drop_connections(self) -> int:
        """Abort every open socket (no closing handshake); how many were open."""
        clients = list(self._clients)
        for client in clients:
            self._loop.call_soon_threadsafe(client.connection.transport.abort)
        return len(clients)

    def active_subscriptions(self) -> dict[str, int]:
        """Open subscriptions per kind ("account", "program")."""
        with self.ledger.lock:
            counts: dict[str, int] = defaultdict(int)
            for subscription in self._subscriptions.values():
                counts[subscription.kind] += 1
            return dict(counts)

    # connections -----------------------------------------------------------------------------
    async def _serve(self, connection: ServerConnection) -> None:
        client = _Client(asyncio.get_running_loop(), asyncio.Queue(), connection)
        self._clients.add(client)
        sender = asyncio.create_task(self._send(client))
        try:
            async for message in connection:
                text = message.decode() if isinstance(message, bytes) else message
                client.queue.put_nowait(self._answer_text(client, text))
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            self._clients.discard(client)
            with self.ledger.lock:
                for subscription_id in list(client.subscriptions):
                    self._remove(subscription_id)

    @staticmethod
    async def _send(client: _Client) -> None:
        try:
            while True:
                await client.connection.send(await client.queue.get())
        except ConnectionClosed:
            pass

    def _answer_text(self, client: _Client, text: str) -> str:
        try:
            request = json.loads(text)
        except ValueError:
            return _error_text(None, -32700, "Parse error")
        if isinstance(request, list):
            return "[" + ",".join(self._answer(client, item) for item in request) + "]"
        return self._answer(client, request)

    def _answer(self, client: _Client, request: Any) -> str:
        if not isinstance(request, dict) or "method" not in request:
            return _error_text(None, -32600, "Invalid request")
        request_id = json.dumps(request.get("id"))
        method = request["method"]
        params = request.get("params") or []
        if not isinstance(params, list):
            return _error_text(request_id, -32602, "Invalid params: expected an array")
        try:
            with self.ledger.lock:
                self.calls[method] += 1
                if method in ("accountSubscribe", "programSubscribe"):
                    result = str(self._subscribe(client, method, params))
                elif method in ("accountUnsubscribe", "programUnsubscribe"):
                    result = self._unsubscribe(client, method, params)
                else:
                    return _error_text(request_id, -32601, "Method not found")
        except RpcError as error:
            return _error_text(request_id, error.code, error.message)
        except (ValueError, TypeError, KeyError, IndexError) as error:
            return _error_text(request_id, -32602, f"Invalid params: {error}")
        return f'{{"jsonrpc":"2.0","result":{result},"id":{request_id}}}'

    def _subscribe(self, client: _Client, method: str, params: list[Any]) -> int:
        key = RpcMethods._pubkey(params[0] if params else None)
        config = _config(params, 1)
        commitment = config.get("commitment", "finalized")
        if commitment not in COMMITMENTS:
            raise RpcError(-32602, f"Invalid params: unknown commitment {commitment!r}")
        encoding = config.get("encoding", "base64")
        if encoding not in ("base64", "base58"):
            raise RpcError(-32602, f"Invalid params: encoding {encoding!r} is not supported here")
        render_config = {"encoding": encoding}
        if config.get("dataSlice") is not None:
            render_config["dataSlice"] = config["dataSlice"]
        tests: list[Callable[[bytes], bool]] = []
        if method == "programSubscribe":
            filters = config.get("filters") or []
            if len(filters) > MAX_FILTERS:
                raise RpcError(-32602, f"Too many filters provided; max {MAX_FILTERS}")
            tests = [_program_filter(entry) for entry in filters]
        kind = "account" if method == "accountSubscribe" else "program"
        subscription = _Subscription(
            next(self._ids), kind, key, commitment, render_config, tests, client
        )
        self._subscriptions[subscription.id] = subscription
        index = self._by_account if kind == "account" else self._by_program
        index[key].add(subscription.id)
        client.subscriptions.add(subscription.id)
        return subscription.id

    def _unsubscribe(self, client: _Client, method: str, params: list[Any]) -> str:
        if not params or not isinstance(params[0], int):
            raise RpcError(-32602, "Invalid params: expected a subscription id")
        subscription = self._subscriptions.get(params[0])
        kind = "account" if method == "accountUnsubscribe" else "program"
        if subscription is None or subscription.client is not client or subscription.kind != kind:
            return "false"
        self._remove(subscription.id)
        return "true"

    def _remove(self, subscription_id: int) -> None:
        subscription = self._subscriptions.pop(subscription_id, None)
        if subscription is None:
            return
        index = self._by_account if subscription.kind == "account" else self._by_program
        index[subscription.key].discard(subscription_id)
        subscription.client.subscriptions.discard(subscription_id)

    # notifications (called under the ledger lock) ---------------------------------------------
    def _lag(self, commitment: str) -> int:
        return self.ledger.processed_slot - self.ledger.slot_for(commitment)

    def _account_changed(self, name: str, slot: int) -> None:
        for commitment in COMMITMENTS:
            if self._lag(commitment) == 0:
                self._notify(commitment, name, self.ledger.slot_for(commitment))
            else:
                self._changed[slot].add(name)

    def _slot_advanced(self, _slot: int) -> None:
        lagging = [c for c in COMMITMENTS if self._lag(c) > 0]
        for commitment in lagging:
            before, now = self._seen[commitment], self.ledger.slot_for(commitment)
            if now <= before:
                continue
            names = set().union(*(self._changed.get(s, ()) for s in range(before + 1, now + 1)))
            for name in sorted(names):
                old = self.ledger.version_at(name, before)
                if old.ui_json != self.ledger.version_at(name, now).ui_json:
                    self._notify(commitment, name, now)
            self._seen[commitment] = now
        for commitment in COMMITMENTS:
            self._seen[commitment] = max(self._seen[commitment], self.ledger.slot_for(commitment))
        oldest = min(self._seen[c] for c in lagging) if lagging else self.ledger.processed_slot
        for slot in [s for s in self._changed if s <= oldest]:
            del self._changed[slot]

    def _notify(self, commitment: str, name: str, slot: int) -> None:
        if not self._by_account.get(name) and not self._by_program:
            return
        version = self.ledger.version_at(name, slot)
        for subscription_id in self._by_account.get(name, ()):
            subscription = self._subscriptions[subscription_id]
            if subscription.commitment == commitment:
                value = _render(version, subscription.config)
                subscription.client.push(
                    _notification("accountNotification", subscription, slot, value)
                )
        if version.account is None:
            return
        data = bytes(version.account.data)
        for subscription_id in self._by_program.get(version.owner, ()):
            subscription = self._subscriptions[subscription_id]
            if subscription.commitment != commitment:
                continue
            if all(test(data) for test in subscription.tests):
                value = f'{{"pubkey":"{name}","account":{_render(version, subscription.config)}}}'
                subscription.client.push(
                    _notification("programNotification", subscription, slot, value)
                )


def _render(version: AccountVersion, config: JSON) -> str:
    """The account as getAccountInfo renders it; a deleted account as Solana notifies it."""
    if version.account is None:
        return (
            f'{{"data":["","{config.get("encoding", "base64")}"],"executable":false,'
            f'"lamports":0,"owner":"{SYSTEM_PROGRAM}","rentEpoch":0,"space":0}}'
        )
    return RpcMethods._render(version, config)


def _notification(method: str, subscription: _Subscription, slot: int, value: str) -> str:
    return (
        f'{{"jsonrpc":"2.0","method":"{method}","params":{{"result":{{"context":{{"slot":{slot}}},'
        f'"value":{value}}},"subscription":{subscription.id}}}}}'
    )
