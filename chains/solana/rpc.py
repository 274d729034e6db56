"""Solana JSON-RPC transport: several endpoints, timeout, retries with jitter, failover, health.

One long-lived solana-py `AsyncClient` (httpx2 underneath) per endpoint carries the requests;
bodies are plain JSON-RPC and responses are checked here, so that a garbage answer becomes one
clear error naming the endpoint and the method rather than a parser panic.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient

from chains.base import EndpointPolicy
from chains.endpoints import EndpointHealth, jittered_backoff, order_for_attempt

T = TypeVar("T")


class EndpointFailure(Exception):
    """One endpoint could not answer one request; the message is one line."""


class RpcErrorResponse(EndpointFailure):
    """The endpoint answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: RPC error {code}: {message}")
        self.code = code


class _Body:
    """A JSON-RPC request body in the shape solana-py's provider sends (`to_json`)."""

    __slots__ = ("_text",)

    def __init__(self, method: str, params: list[Any]) -> None:
        self._text = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})

    def to_json(self) -> str:
        return self._text


class Endpoint:
    """One URL: sends requests with retries and records its health."""

    def __init__(self, url: str, policy: EndpointPolicy, health: EndpointHealth) -> None:
        self.url = url
        self._policy = policy
        self.health = health
        self._client = AsyncClient(
            url, timeout=policy.timeout_seconds, http2=False, max_transport_retries=0
        )
        self.request_count = 0

    async def call(self, method: str, params: list[Any]) -> Any:
        """The `result` of one JSON-RPC call, retried `policy.retries` times with jittered
        exponential backoff on transport errors and RPC errors.

        May raise: EndpointFailure (after the retries; garbage responses are not retried).
        """
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                result = await self._call_once(method, params)
            except _Garbage as garbage:
                self.health.record_failure(str(garbage), time.perf_counter() - started)
                raise EndpointFailure(str(garbage)) from None
            except EndpointFailure as failure:
                self.health.record_failure(str(failure), time.perf_counter() - started)
                if attempt >= self._policy.retries:
                    raise
            else:
                self.health.record_success(time.perf_counter() - started)
                return result
            attempt += 1
            await asyncio.sleep(jittered_backoff(attempt, self._policy.backoff_seconds))

    async def _call_once(self, method: str, params: list[Any]) -> Any:
        self.request_count += 1
        try:
            raw = await self._client._provider.make_request_unparsed(_Body(method, params))
        except SolanaRpcException as error:
            cause = error.__cause__ or error
            reason = f"{type(cause).__name__}: {cause}".splitlines()[0][:200]
            raise EndpointFailure(f"{method}: transport failed ({reason})") from None
        try:
            envelope = json.loads(raw)
        except ValueError:
            raise _Garbage(f"{method}: response is not JSON ({raw[:60]!r})") from None
        if not isinstance(envelope, dict) or envelope.get("jsonrpc") != "2.0":
            raise _Garbage(f"{method}: response is not JSON-RPC 2.0 ({raw[:60]!r})")
        if "error" in envelope:
            error_object = envelope["error"]
            if not isinstance(error_object, dict):
                raise _Garbage(f"{method}: malformed JSON-RPC error ({raw[:60]!r})")
            raise RpcErrorResponse(
                method, int(error_object.get("code", 0)), str(error_object.get("message"))[:200]
            )
        if "result" not in envelope:
            raise _Garbage(f"{method}: JSON-RPC response has no result")
        return envelope["result"]

    async def aclose(self) -> None:
        await self._client.close()


class _Garbage(EndpointFailure):
    """A response that is not JSON-RPC at all: retrying the same endpoint will not help."""


class FailoverTransport:
    """Runs a whole read against one endpoint, failing over to the next when it fails.

    Endpoints are tried in `order_for_attempt` order (healthy first, configured order
    otherwise); a read that fails on every endpoint
    raises one `EndpointFailure` naming each endpoint and its last error.
    """

    def __init__(self, policy: EndpointPolicy) -> None:
        if not policy.urls:
            raise ValueError("an endpoint policy needs at least one URL")
        self.health = {url: EndpointHealth(url) for url in policy.urls}
        self.endpoints = [Endpoint(url, policy, self.health[url]) for url in policy.urls]

    async def run(self, read: Callable[[Endpoint], Awaitable[T]]) -> tuple[T, Endpoint]:
        """`read(endpoint)` on the first endpoint that completes it.

        May raise: EndpointFailure (every endpoint failed).
        """
        order = order_for_attempt([endpoint.health for endpoint in self.endpoints])
        ordered = [self.endpoints[i] for i in order]
        failures = []
        for endpoint in ordered:
            try:
                return await read(endpoint), endpoint
            except EndpointFailure as failure:
                failures.append(f"{endpoint.url}: {failure}")
        raise EndpointFailure("every endpoint failed: " + "; ".join(failures))

    async def aclose(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.aclose()
