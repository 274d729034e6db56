"""A small Solana JSON-RPC HTTP server over a `Ledger` (LiteSVM plus per-slot history).

Methods: getSlot, getBalance, getAccountInfo, getMultipleAccounts, getTokenAccountsByOwner,
getProgramAccounts (dataSize/memcmp filters),
getBlockTime, getBlocks, getLatestBlockhash, getGenesisHash, getHealth, getVersion,
getBlockHeight.
Reads honour `commitment` (default `finalized`, as real nodes do), `minContextSlot` (error -32016
when the commitment's slot is below it), `dataSlice`, and base64 / base58 encodings. Responses
carry `context.slot`. JSON-RPC batches are accepted.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from solders.pubkey import Pubkey

from chains.solana.localnet.ledger import COMMITMENTS, AccountVersion, Ledger

API_VERSION = "2.2.0"
MAX_MULTIPLE_ACCOUNTS = 100
JSON = dict[str, Any]


class RpcError(Exception):
    """A JSON-RPC error object to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _config(params: list[Any], index: int) -> JSON:
    if len(params) > index and isinstance(params[index], dict):
        config: JSON = params[index]
        return config
    return {}


class RpcMethods:
    """JSON-RPC method implementations; each returns the `result` JSON text."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        # What was asked, for benchmarks: calls per method, and keys over all
        # getMultipleAccounts calls. Updated under the ledger lock.
        self.calls: Counter[str] = Counter()
        self.multiple_accounts_keys = 0
        self.table: dict[str, Callable[[list[Any]], str]] = {
            "getSlot": self.get_slot,
            "getBlockHeight": self.get_slot,
            "getBalance": self.get_balance,
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "getProgramAccounts": self.get_program_accounts,
            "getBlockTime": self.get_block_time,
            "getBlocks": self.get_blocks,
            "getLatestBlockhash": self.get_latest_blockhash,
            "getGenesisHash": lambda _p: json.dumps(str(self.ledger.genesis_hash)),
            "getHealth": lambda _p: '"ok"',
            "getVersion": lambda _p: json.dumps(
                {"solana-core": API_VERSION, "feature-set": 0, "xmargin-localnet": True}
            ),
        }

    def _read_slot(self, config: JSON) -> int:
        commitment = config.get("commitment", "finalized")
        if commitment not in COMMITMENTS:
            raise RpcError(-32602, f"Invalid params: unknown commitment {commitment!r}")
        slot = self.ledger.slot_for(commitment)
        min_slot = config.get("minContextSlot")
        if min_slot is not None and slot < int(min_slot):
            raise RpcError(-32016, "Minimum context slot has not been reached")
        return slot

    @staticmethod
    def _context(slot: int, value: str) -> str:
        return f'{{"context":{{"apiVersion":"{API_VERSION}","slot":{slot}}},"value":{value}}}'

    @staticmethod
    def _pubkey(value: Any) -> str:
        if not isinstance(value, str):
            raise RpcError(-32602, "Invalid param: expected a base58 pubkey string")
        try:
            Pubkey.from_string(value)
        except ValueError as error:
            raise RpcError(-32602, f"Invalid param: {error}") from None
        return value

    @staticmethod
    def _render(version: AccountVersion, config: JSON) -> str:
        encoding = config.get("encoding", "base64")
        data_slice = config.get("dataSlice")
        if version.account is None:
            return "null"
        if encoding == "base64" and data_slice is None:
            return version.ui_json
        if encoding not in ("base64", "base58"):
            raise RpcError(-32602, f"Invalid params: encoding {encoding!r} is not supported here")
        account = version.account
        data = bytes(account.data)
        if data_slice is not None:
            offset, length = int(data_slice["offset"]), int(data_slice["length"])
            data = data[offset : offset + length]
        if encoding == "base58":
            if len(data) > 128:
                raise RpcError(-32602, "base58 data must be under 128 bytes")
            text = str(Pubkey(data.rjust(32, b"\0"))) if len(data) == 32 else _b58(data)
        else:
            text = base64.b64encode(data).decode()
        return json.dumps(
            {
                "data": [text, encoding],
                "executable": account.executable,
                "lamports": account.lamports,
                "owner": version.owner,
                "rentEpoch": account.rent_epoch,
                "space": len(account.data),
            }
        )

    def get_slot(self, params: list[Any]) -> str:
        return str(self._read_slot(_config(params, 0)))

    def get_balance(self, params: list[Any]) -> str:
        key = self._pubkey(params[0] if params else None)
        slot = self._read_slot(_config(params, 1))
        account = self.ledger.version_at(key, slot).account
        return self._context(slot, str(account.lamports if account is not None else 0))

    def get_account_info(self, params: list[Any]) -> str:
        key = self._pubkey(params[0] if params else None)
        config = _config(params, 1)
        slot = self._read_slot(config)
        return self._context(slot, self._render(self.ledger.version_at(key, slot), config))

    def get_multiple_accounts(self, params: list[Any]) -> str:
        keys = params[0] if params else None
        if not isinstance(keys, list):
            raise RpcError(-32602, "Invalid params: expected a list of pubkeys")
        if len(keys) > MAX_MULTIPLE_ACCOUNTS:
            raise RpcError(-32602, f"Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")
        config = _config(params, 1)
        slot = self._read_slot(config)
        version_at = self.ledger.version_at
        fast = config.get("encoding", "base64") == "base64" and config.get("dataSlice") is None
        try:
            if fast:
                rendered = [version_at(key, slot).ui_json for key in keys]
            else:
                rendered = [self._render(version_at(self._pubkey(k), slot), config) for k in keys]
        except (ValueError, TypeError) as error:
            raise RpcError(-32602, f"Invalid param: {error}") from None
        return self._context(slot, "[" + ",".join(rendered) + "]")

    def get_token_accounts_by_owner(self, params: list[Any]) -> str:
        holder = self._pubkey(params[0] if params else None)
        token_filter = _config(params, 1)
        config = _config(params, 2)
        mint = token_filter.get("mint")
        program = token_filter.get("programId")
        if (mint is None) == (program is None):
            raise RpcError(-32602, "Invalid params: give exactly one of mint or programId")
        slot = self._read_slot(config)
        entries = []
        for name in self.ledger.token_account_candidates(holder):
            version = self.ledger.version_at(name, slot)
            account = version.account
            if account is None or len(account.data) < 165:
                continue
            data = bytes(account.data)
            if str(Pubkey.from_bytes(data[32:64])) != holder:
                continue
            if program is not None and version.owner != program:
                continue
            if mint is not None and str(Pubkey.from_bytes(data[0:32])) != mint:
                continue
            entries.append(f'{{"account":{self._render(version, config)},"pubkey":"{name}"}}')
        return self._context(slot, "[" + ",".join(entries) + "]")

    def get_program_accounts(self, params: list[Any]) -> str:
        """Accounts owned by a program at the read slot, with `dataSize` and `memcmp` filters
        (memcmp bytes base58, or base64 with `encoding`); `withContext` wraps the list."""
        program = self._pubkey(params[0] if params else None)
        config = _config(params, 1)
        slot = self._read_slot(config)
        tests: list[Callable[[bytes], bool]] = []
        for entry in config.get("filters") or []:
            tests.append(_program_filter(entry))
        entries = []
        for name in self.ledger.program_account_candidates(program):
            version = self.ledger.version_at(name, slot)
            if version.account is None or version.owner != program:
                continue
            data = bytes(version.account.data)
            if all(test(data) for test in tests):
                entries.append(f'{{"account":{self._render(version, config)},"pubkey":"{name}"}}')
        listing = "[" + ",".join(entries) + "]"
        return self._context(slot, listing) if config.get("withContext") else listing

    def get_block_time(self, params: list[Any]) -> str:
        if not params or not isinstance(params[0], int):
            raise RpcError(-32602, "Invalid params: expected a slot number")
        slot = params[0]
        if slot > self.ledger.processed_slot or slot < 0:
            raise RpcError(-32004, f"Block not available for slot {slot}")
        return str(self.ledger.block_time(slot))

    def get_blocks(self, params: list[Any]) -> str:
        """Slots with a block from `start` to `end` (default and cap: the commitment's slot);
        slots made skipped with `Ledger.skip_slot` are left out, as a real node leaves out
        skipped slots."""
        if not params or not isinstance(params[0], int):
            raise RpcError(-32602, "Invalid params: expected a start slot")
        end_given = len(params) > 1 and isinstance(params[1], int)
        config = _config(params, 2 if end_given else 1)
        commitment = config.get("commitment", "finalized")
        if commitment == "processed":
            raise RpcError(-32602, "Method does not support commitment below `confirmed`")
        top = self._read_slot(config)
        end = min(int(params[1]), top) if end_given else top
        if end - params[0] > 500_000:
            raise RpcError(-32602, "Slot range too large; max 500000")
        return json.dumps(self.ledger.blocks(params[0], end))

    def get_latest_blockhash(self, params: list[Any]) -> str:
        slot = self._read_slot(_config(params, 0))
        value = json.dumps(
            {"blockhash": str(self.ledger.blockhash(slot)), "lastValidBlockHeight": slot + 150}
        )
        return self._context(slot, value)

    def answer(self, request: Any) -> str:
        """The JSON-RPC response text for one request object."""
        if not isinstance(request, dict) or "method" not in request:
            return _error_text(None, -32600, "Invalid request")
        request_id = json.dumps(request.get("id"))
        method = self.table.get(request["method"])
        if method is None:
            return _error_text(request_id, -32601, "Method not found")
        params = request.get("params") or []
        if not isinstance(params, list):
            return _error_text(request_id, -32602, "Invalid params: expected an array")
        try:
            with self.ledger.lock:
                self.calls[request["method"]] += 1
                if request["method"] == "getMultipleAccounts" and params:
                    keys = params[0]
                    self.multiple_accounts_keys += len(keys) if isinstance(keys, list) else 0
                result = method(params)
        except RpcError as error:
            return _error_text(request_id, error.code, error.message)
        except (ValueError, TypeError, KeyError, IndexError) as error:
            return _error_text(request_id, -32602, f"Invalid params: {error}")
        return f'{{"jsonrpc":"2.0","result":{result},"id":{request_id}}}'


def _program_filter(entry: Any) -> Callable[[bytes], bool]:
    """One getProgramAccounts filter as a predicate. May raise: RpcError (unknown filter)."""
    if isinstance(entry, dict) and "dataSize" in entry:
        size = int(entry["dataSize"])
        return lambda data: len(data) == size
    if isinstance(entry, dict) and isinstance(entry.get("memcmp"), dict):
        memcmp = entry["memcmp"]
        offset, text = int(memcmp["offset"]), str(memcmp["bytes"])
        if memcmp.get("encoding", "base58") == "base64":
            wanted = base64.b64decode(text)
        else:
            wanted = _from_b58(text)
        return lambda data: data[offset : offset + len(wanted)] == wanted
    raise RpcError(-32602, f"Invalid params: unsupported filter {entry!r}")


def _from_b58(text: str) -> bytes:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    number = 0
    for char in text:
        index = alphabet.find(char)
        if index < 0:
            raise RpcError(-32602, f"Invalid params: {text!r} is not base58")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def _b58(data: bytes) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    number = int.from_bytes(data, "big")
    text = ""
    while number:
        number, digit = divmod(number, 58)
        text = alphabet[digit] + text
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + text


def _error_text(request_id: str | None, code: int, message: str) -> str:
    error = json.dumps({"code": code, "message": message})
    return f'{{"jsonrpc":"2.0","error":{error},"id":{request_id or "null"}}}'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse one connection
    methods: RpcMethods

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            request = json.loads(body)
        except ValueError:
            payload = _error_text(None, -32700, "Parse error")
        else:
            if isinstance(request, list):
                payload = "[" + ",".join(self.methods.answer(item) for item in request) + "]"
            else:
                payload = self.methods.answer(request)
        encoded = payload.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test server should not write a line per request."""


class RpcServer:
    """The HTTP server in a daemon thread; `url` is ready once constructed."""

    def __init__(self, ledger: Ledger, host: str = "127.0.0.1", port: int = 0) -> None:
        self.methods = RpcMethods(ledger)
        handler = type("LocalSolanaHandler", (_Handler,), {"methods": self.methods})
        self._http = ThreadingHTTPServer((host, port), handler)
        self._http.daemon_threads = True
        self.port = int(self._http.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._http.serve_forever, name=f"local-solana-rpc:{self.port}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve on the calling thread (subprocess mode)."""
        self._http.serve_forever()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._http.shutdown()
            self._thread.join(timeout=5)
        self._http.server_close()
