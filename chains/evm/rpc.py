"""JSON-RPC for one chain through async web3.py: several endpoints, timeouts, jittered retries,
failover.

Each endpoint is one long-lived `AsyncWeb3(AsyncHTTPProvider(url))` with its own keep-alive
aiohttp session. Requests go through the provider's public request API (`make_request`,
`make_batch_request`) with params built here, so a poll's ~10 aggregate3 `eth_call`s pay no
contract-object or middleware cost. web3's own retry is off: every request of a poll goes
through `EndpointPool.request` / `EndpointPool.batch`, the single place where retries, failover,
health bookkeeping and request counting happen. A node that answers with a JSON-RPC error for an
execution revert is not retried elsewhere: a revert is a property of the call, not of the node.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.types import RPCEndpoint

from chains.base import AdapterError, EndpointPolicy
from chains.endpoints import EndpointHealth, jittered_backoff, order_for_attempt

_BODY_PREVIEW = 60
# Concurrent connections kept per endpoint; the adapter keeps at most 8 requests in flight.
_CONNECTIONS = 32


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


def _preview(body: bytes | str) -> str:
    text = body if isinstance(body, str) else body[:_BODY_PREVIEW].decode("utf-8", "replace")
    clipped = text[:_BODY_PREVIEW].replace("\n", " ")
    return clipped + ("…" if len(body) > _BODY_PREVIEW else "")


def _is_revert(error: Any) -> bool:
    if not isinstance(error, dict):
        return False
    message = str(error.get("message", "")).lower()
    return error.get("code") == 3 or "revert" in message


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return f"JSON-RPC error {error.get('code')}: {error.get('message')}"
    return f"JSON-RPC error {error!r}"


async def _refuse_non_200(response: aiohttp.ClientResponse) -> None:
    """aiohttp status hook: any status but 200 fails the endpoint, quoting the body's start.

    May raise: EndpointFailure.
    """
    if response.status != 200:
        body = await response.read()
        raise EndpointFailure(f"HTTP {response.status}: {_preview(body)!r}")


class Web3Endpoint:
    """One URL: its `AsyncWeb3` client, its aiohttp session and its health record."""

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self.url = url
        self.health = EndpointHealth(url)
        self._timeout = timeout_seconds
        self.w3: AsyncWeb3[AsyncHTTPProvider] = AsyncWeb3(
            AsyncHTTPProvider(
                url,
                request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout_seconds)},
                # EndpointPool retries, backs off and fails over; web3 must send exactly once.
                exception_retry_configuration=None,
            )
        )
        # web3 opens its own session lazily (one per event loop) with keep-alive off; ours keeps
        # connections open, so a poll does not pay a TCP/TLS handshake per request.
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def send(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> Any:
        """POST one JSON-RPC request (one call) or batch (several) and return the decoded body.

        The request runs shielded in its own task: web3 8 takes a process-wide lock on every
        request through a thread (`async_lock`), and cancelling a request while it waits there
        can leave that lock held forever (ethereum/web3.py#3867). A cancelled or timed-out caller
        returns at once; the request itself ends by the aiohttp timeout.
        May raise: EndpointFailure.
        """
        task = asyncio.ensure_future(self._post(calls))
        self._in_flight.add(task)
        task.add_done_callback(self._settled)
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(task)
        except TimeoutError as exc:
            raise EndpointFailure(f"timed out ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:
            raise EndpointFailure(f"{type(exc).__name__}: {exc or 'transport error'}") from exc
        except OSError as exc:
            raise EndpointFailure(f"{type(exc).__name__}: {exc}") from exc

    async def _post(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> Any:
        """The decoded body of one POST; a body web3 cannot decode is an EndpointFailure.

        May raise: EndpointFailure, aiohttp.ClientError, TimeoutError, OSError.
        """
        await self._ensure_session()
        provider = self.w3.provider
        try:
            if len(calls) == 1:
                ((method, params),) = calls
                return await provider.make_request(RPCEndpoint(method), list(params))
            return await provider.make_batch_request(
                [(RPCEndpoint(method), list(params)) for method, params in calls]
            )
        except json.JSONDecodeError as exc:
            raise EndpointFailure(
                f"response is not JSON-RPC (HTTP 200, body starts {_preview(exc.doc)!r})"
            ) from None
        except UnicodeDecodeError as exc:
            raise EndpointFailure(
                f"response is not JSON-RPC (HTTP 200, body starts {_preview(exc.object)!r})"
            ) from None
        except (TypeError, AttributeError) as exc:
            if len(calls) == 1:
                raise
            # web3 sorts a batch answer by `id`: members that are not objects, or ids of mixed
            # types, fail there before this module sees the body.
            raise EndpointFailure(f"response is not a JSON-RPC 2.0 batch ({exc})") from None

    async def _ensure_session(self) -> None:
        """Register this endpoint's keep-alive session with the provider for the running loop.

        May raise: nothing beyond aiohttp's own session setup.
        """
        loop = asyncio.get_running_loop()
        if self._session is not None and not self._session.closed and self._session_loop is loop:
            return
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=_CONNECTIONS),
            raise_for_status=_refuse_non_200,
        )
        cached = await self.w3.provider.cache_async_session(session)
        if cached is not session:  # another request of this loop registered one first
            await session.close()
        self._session, self._session_loop = cached, loop

    def _settled(self, task: asyncio.Task[Any]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that timed out has already reported it

    async def aclose(self) -> None:
        """Let requests still running end (bounded by the timeout), then close the sessions."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self._timeout)
        await self.w3.provider.disconnect()
        self._session = None


class EndpointPool:
    """The endpoints of one chain, tried in order with retries, jittered backoff and failover."""

    def __init__(self, chain: str, policy: EndpointPolicy) -> None:
        if not policy.urls:
            raise ValueError(f"{chain}: the endpoint list is empty")
        self.chain = chain
        self.policy = policy
        self.endpoints = [Web3Endpoint(url, policy.timeout_seconds) for url in policy.urls]

    @property
    def health(self) -> dict[str, EndpointHealth]:
        return {endpoint.url: endpoint.health for endpoint in self.endpoints}

    def _ordered(self) -> list[Web3Endpoint]:
        order = order_for_attempt([endpoint.health for endpoint in self.endpoints])
        return [self.endpoints[i] for i in order]

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
        errors: list[str] = []
        for endpoint in self._ordered():
            last = f"{endpoint.url}: not tried"
            for attempt in range(self.policy.retries + 1):
                if attempt:
                    await asyncio.sleep(self._backoff(attempt))
                meter.count += 1
                started = time.perf_counter()
                try:
                    body = await endpoint.send(calls)
                    results = self._results(body, len(calls))
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
        return jittered_backoff(attempt, self.policy.backoff_seconds)

    @staticmethod
    def _results(body: Any, count: int) -> list[Any]:
        """The `result`s of a JSON-RPC answer to `count` calls, in call order.

        web3 numbers the requests (ascending within a batch), so answers are put in id order;
        any shape other than one JSON-RPC 2.0 answer per call is an endpoint failure.
        May raise: EndpointFailure, CallReverted.
        """
        responses = body if isinstance(body, list) else [body]
        for response in responses:
            if not isinstance(response, dict) or response.get("jsonrpc") != "2.0":
                raise EndpointFailure(f"response is not JSON-RPC 2.0: {str(response)[:60]!r}")
        ids = [response.get("id") for response in responses]
        numbered = all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        if len(responses) == 1 and "error" in responses[0] and (count > 1 or not numbered):
            # the request as a whole was refused (rate limit, parse error): no answer per call
            raise EndpointFailure(_error_text(responses[0]["error"]))
        if not numbered:
            raise EndpointFailure(f"response has a missing or non-integer id: {ids[:5]!r}")
        if len(set(ids)) != len(ids) or len(ids) != count:
            distinct = len(set(ids))
            raise EndpointFailure(f"response has {distinct} distinct answers for {count} calls")
        results: list[Any] = []
        for response in sorted(responses, key=lambda response: int(response["id"])):
            if "error" in response:
                if _is_revert(response["error"]):
                    raise CallReverted(_error_text(response["error"]))
                raise EndpointFailure(_error_text(response["error"]))
            if "result" not in response:
                raise EndpointFailure(
                    f"JSON-RPC response {response['id']} has neither result nor error"
                )
            results.append(response["result"])
        return results

    async def aclose(self) -> None:
        await asyncio.gather(*(endpoint.aclose() for endpoint in self.endpoints))
