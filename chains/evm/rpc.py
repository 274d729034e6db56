"""JSON-RPC over HTTP for one chain: several endpoints, timeouts, jittered retries, failover.

One long-lived `httpx.AsyncClient` per endpoint. Every request of a poll goes through
`EndpointPool.request` / `EndpointPool.batch`, which is the single place where retries, failover,
health bookkeeping and request counting happen. A node that answers with a JSON-RPC error for an
execution revert is not retried elsewhere: a revert is a property of the call, not of the node.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from chains.base import AdapterError, EndpointPolicy

# An endpoint that failed within this many seconds is tried after the ones that did not.
_COOLDOWN_SECONDS = 30.0
_BODY_PREVIEW = 60


@dataclass(slots=True)
class EndpointHealth:
    """What one endpoint has done so far; exposed for operators and tests."""

    url: str
    successes: int = 0
    failures: int = 0
    last_error: str | None = None
    last_latency_seconds: float | None = None
    last_success_at: float | None = None  # unix seconds
    last_failure_at: float | None = None  # unix seconds

    def record_success(self, latency: float) -> None:
        self.successes += 1
        self.last_latency_seconds = latency
        self.last_success_at = time.time()

    def record_failure(self, error: str, latency: float) -> None:
        self.failures += 1
        self.last_error = error
        self.last_latency_seconds = latency
        self.last_failure_at = time.time()

    @property
    def cooling_down(self) -> bool:
        """True when the last thing this endpoint did was fail, recently."""
        if self.last_failure_at is None:
            return False
        if self.last_success_at is not None and self.last_success_at > self.last_failure_at:
            return False
        return time.time() - self.last_failure_at < _COOLDOWN_SECONDS


@dataclass(slots=True)
class RequestMeter:
    """Counts the HTTP requests of one poll and remembers which endpoints served it."""

    count: int = 0
    served_by: list[str] = field(default_factory=list)

    def served(self, url: str) -> None:
        if url not in self.served_by:
            self.served_by.append(url)


class EndpointFailure(Exception):
    """This endpoint could not answer (transport, HTTP status, garbage); another one may."""


class CallReverted(Exception):
    """The node executed the call and it reverted; retrying elsewhere would not help."""


def _preview(body: bytes) -> str:
    text = body[:_BODY_PREVIEW].decode("utf-8", "replace").replace("\n", " ")
    return text + ("…" if len(body) > _BODY_PREVIEW else "")


def _is_revert(error: Any) -> bool:
    if not isinstance(error, dict):
        return False
    message = str(error.get("message", "")).lower()
    return error.get("code") == 3 or "revert" in message


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return f"JSON-RPC error {error.get('code')}: {error.get('message')}"
    return f"JSON-RPC error {error!r}"


class JsonRpcEndpoint:
    """One URL with its own HTTP client and health record."""

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self.url = url
        self.health = EndpointHealth(url)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            headers={"content-type": "application/json"},
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    async def post(self, payload: bytes) -> Any:
        """POST one JSON-RPC payload and return the parsed JSON body.

        May raise: EndpointFailure.
        """
        try:
            response = await self._client.post(self.url, content=payload)
        except httpx.TimeoutException as exc:
            raise EndpointFailure(f"timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise EndpointFailure(f"{type(exc).__name__}: {exc or 'transport error'}") from exc
        body = response.content
        if response.status_code != 200:
            raise EndpointFailure(f"HTTP {response.status_code}: {_preview(body)!r}")
        try:
            return json.loads(body)
        except ValueError:
            raise EndpointFailure(
                f"response is not JSON-RPC (HTTP 200, body starts {_preview(body)!r})"
            ) from None

    async def aclose(self) -> None:
        await self._client.aclose()


class EndpointPool:
    """The endpoints of one chain, tried in order with retries, jittered backoff and failover."""

    def __init__(self, chain: str, policy: EndpointPolicy) -> None:
        if not policy.urls:
            raise ValueError(f"{chain}: the endpoint list is empty")
        self.chain = chain
        self.policy = policy
        self.endpoints = [JsonRpcEndpoint(url, policy.timeout_seconds) for url in policy.urls]
        self._ids = itertools.count(1)

    @property
    def health(self) -> dict[str, EndpointHealth]:
        return {endpoint.url: endpoint.health for endpoint in self.endpoints}

    def _ordered(self) -> list[JsonRpcEndpoint]:
        # Configured order, but endpoints that just failed go last until they recover.
        return sorted(self.endpoints, key=lambda endpoint: endpoint.health.cooling_down)

    async def request(
        self, method: str, params: Sequence[Any], meter: RequestMeter, *, what: str = ""
    ) -> Any:
        """The `result` of one JSON-RPC call.

        May raise: AdapterError.
        """
        (result,) = await self.batch([(method, params)], meter, what=what or method)
        return result

    async def batch(
        self, calls: Sequence[tuple[str, Sequence[Any]]], meter: RequestMeter, *, what: str
    ) -> list[Any]:
        """The results of several JSON-RPC calls sent as one HTTP request, in call order.

        Every endpoint is tried (retries with jittered exponential backoff per endpoint) before
        giving up; the AdapterError then names the chain, each endpoint and what it did.
        May raise: AdapterError.
        """
        ids = [next(self._ids) for _ in calls]
        request_objects = [
            {"jsonrpc": "2.0", "id": call_id, "method": method, "params": list(params)}
            for call_id, (method, params) in zip(ids, calls, strict=True)
        ]
        single = len(calls) == 1
        payload = json.dumps(request_objects[0] if single else request_objects).encode()
        errors: list[str] = []
        for endpoint in self._ordered():
            last = f"{endpoint.url}: not tried"
            for attempt in range(self.policy.retries + 1):
                if attempt:
                    await asyncio.sleep(self._backoff(attempt))
                meter.count += 1
                started = time.perf_counter()
                try:
                    body = await endpoint.post(payload)
                    results = self._results(body, ids)
                except EndpointFailure as exc:
                    endpoint.health.record_failure(str(exc), time.perf_counter() - started)
                    last = f"{endpoint.url}: {exc}"
                    continue
                except CallReverted as exc:
                    endpoint.health.record_success(time.perf_counter() - started)
                    meter.served(endpoint.url)
                    raise AdapterError(
                        f"{self.chain}: {what} reverted on {endpoint.url}: {exc}"
                    ) from None
                endpoint.health.record_success(time.perf_counter() - started)
                meter.served(endpoint.url)
                return results
            errors.append(last)
        raise AdapterError(f"{self.chain}: {what} failed on every endpoint ({'; '.join(errors)})")

    def _backoff(self, attempt: int) -> float:
        return self.policy.backoff_seconds * float(2 ** (attempt - 1)) * random.uniform(0.5, 1.5)

    @staticmethod
    def _results(body: Any, ids: Sequence[int]) -> list[Any]:
        """Match responses to request ids; any shape other than JSON-RPC is an endpoint failure.

        May raise: EndpointFailure, CallReverted.
        """
        responses = body if isinstance(body, list) else [body]
        by_id: dict[Any, Any] = {}
        for response in responses:
            if not isinstance(response, dict) or response.get("jsonrpc") != "2.0":
                raise EndpointFailure(f"response is not JSON-RPC 2.0: {str(response)[:60]!r}")
            by_id[response.get("id")] = response
        results: list[Any] = []
        for call_id in ids:
            response = by_id.get(call_id)
            if response is None:
                if len(responses) == 1 and "error" in responses[0]:
                    raise EndpointFailure(_error_text(responses[0]["error"]))
                raise EndpointFailure(f"response has no answer for request id {call_id}")
            if "error" in response:
                if _is_revert(response["error"]):
                    raise CallReverted(_error_text(response["error"]))
                raise EndpointFailure(_error_text(response["error"]))
            if "result" not in response:
                raise EndpointFailure(f"JSON-RPC response {call_id} has neither result nor error")
            results.append(response["result"])
        return results

    async def aclose(self) -> None:
        await asyncio.gather(*(endpoint.aclose() for endpoint in self.endpoints))
