"""A local anvil node for the demo, the tests and the benchmark, and a tiny JSON-RPC client
for driving it (sending transactions from anvil's unlocked default accounts)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

ANVIL_RELATIVE = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
# anvil's default account 0 (mnemonic "test test … junk"), unlocked on every anvil node.
DEFAULT_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


class DevnetError(RuntimeError):
    """The local node could not be started or driven; the message says what happened."""


def find_anvil() -> Path:
    """The anvil binary: `$XMARGIN_ANVIL`, else `node_modules/...` found by walking up from this
    module and from the working directory.

    May raise: DevnetError.
    """
    override = os.environ.get("XMARGIN_ANVIL")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise DevnetError(f"XMARGIN_ANVIL={override} is not an executable file")
        return path
    starts = [Path(__file__).resolve().parent, Path.cwd().resolve()]
    searched: list[str] = []
    for start in starts:
        for directory in (start, *start.parents):
            candidate = directory / ANVIL_RELATIVE
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        searched.append(str(start))
    raise DevnetError(
        f"anvil not found: set XMARGIN_ANVIL or run `npm install` (looked for {ANVIL_RELATIVE} "
        f"above {' and '.join(searched)})"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AnvilNode:
    """An anvil process on 127.0.0.1. Auto-mines one block per transaction; `mine` adds more.

    `slots_in_an_epoch` sets where anvil puts the `safe` (head - slots) and `finalized`
    (head - 2*slots) tags.
    """

    def __init__(
        self,
        chain_id: int = 31337,
        port: int | None = None,
        *,
        slots_in_an_epoch: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.chain_id = chain_id
        self.port = port or free_port()
        self.slots_in_an_epoch = slots_in_an_epoch
        self.extra_args = extra_args
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout_seconds: float = 15.0) -> AnvilNode:
        """Launch anvil and wait until it answers JSON-RPC.

        May raise: DevnetError.
        """
        args = [
            str(find_anvil()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--quiet",
            *(
                ["--slots-in-an-epoch", str(self.slots_in_an_epoch)]
                if self.slots_in_an_epoch is not None
                else []
            ),
            *self.extra_args,
        ]
        self._process = self._spawn(args)
        deadline = time.monotonic() + timeout_seconds
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                if self._process.poll() is not None:
                    output = self._output()
                    self.stop()
                    raise DevnetError(f"anvil exited with {self._process.returncode}: {output}")
                try:
                    response = await client.post(
                        self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}
                    )
                    if response.status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise DevnetError(f"anvil did not answer on {self.url} in {timeout_seconds}s")
                await asyncio.sleep(0.05)

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        # Output goes to a temporary file, not a pipe nobody drains, so anvil never blocks on it.
        self._log = tempfile.TemporaryFile()
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        text: str = self._log.read()[-500:].decode("utf-8", "replace")
        return text.strip().replace("\n", " | ")

    def stop(self) -> None:
        """Terminate the node (kill it if it does not exit within 5 s)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> AnvilNode:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class DevnetRpc:
    """A minimal JSON-RPC client for set-up work against a local node (not for polling)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = httpx.AsyncClient(timeout=60.0)
        self._next_id = 0

    async def __aenter__(self) -> DevnetRpc:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        """May raise: DevnetError."""
        (result,) = await self.batch([(method, params or [])])
        return result

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several calls in one HTTP request; results in call order.

        May raise: DevnetError.
        """
        first = self._next_id
        self._next_id += len(calls)
        payload = [
            {"jsonrpc": "2.0", "id": first + index, "method": method, "params": params}
            for index, (method, params) in enumerate(calls)
        ]
        response = await self._client.post(self.url, json=payload)
        body = response.json()
        if not isinstance(body, list):
            raise DevnetError(f"{self.url}: unexpected answer {str(body)[:200]}")
        by_id = {item.get("id"): item for item in body}
        results = []
        for index, (method, _) in enumerate(calls):
            item = by_id.get(first + index, {})
            if "error" in item or "result" not in item:
                raise DevnetError(f"{self.url}: {method} failed: {item.get('error', item)}")
            results.append(item["result"])
        return results

    async def send(
        self, to: str | None, data: bytes = b"", *, value: int = 0, sender: str = DEFAULT_ACCOUNT
    ) -> dict[str, Any]:
        """Send a transaction from an unlocked account and return its (successful) receipt.

        May raise: DevnetError (including a reverted transaction).
        """
        tx: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "value": hex(value)}
        if to is not None:
            tx["to"] = to
        # Headroom over the estimate: it runs at the latest block's timestamp, and a transaction
        # mined a second later can write more storage (e.g. `updated_at = block.timestamp`).
        estimate = int(await self.call("eth_estimateGas", [tx]), 16)
        tx["gas"] = hex(estimate * 5 // 4 + 20_000)
        tx_hash = await self.call("eth_sendTransaction", [tx])
        receipt = await self.call("eth_getTransactionReceipt", [tx_hash])
        if receipt is None:  # a node started with mining off: mine the pending transaction
            await self.call("evm_mine")
            receipt = await self.call("eth_getTransactionReceipt", [tx_hash])
        if not isinstance(receipt, dict) or receipt.get("status") != "0x1":
            raise DevnetError(f"{self.url}: transaction {tx_hash} to {to} failed: {receipt}")
        return receipt
