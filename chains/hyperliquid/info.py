"""Hyperliquid info transport: one long-lived `httpx.AsyncClient` per endpoint URL (HTTP
keep-alive), timeouts, jittered retries, 429 backoff, the weight budget and the shared
per-endpoint health record.

Every failure is one line naming the request type; the adapter adds the URL. A body that is not
JSON (an HTML error page, a captive portal) is garbage: retrying the same URL will not help.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import httpx

from chains.base import EndpointPolicy
from chains.endpoints import EndpointHealth, jittered_backoff
from chains.hyperliquid.budget import WeightBudget
from chains.hyperliquid.decoders import DecodeError, parse_body

_NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class InfoFailure(Exception):
    """One request to one endpoint failed (after its retries); the message is one line."""


class RateLimited(InfoFailure):
    """The endpoint answered HTTP 429 (`retry_after`: its Retry-After header, seconds)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetSpent(InfoFailure):
    """The adapter's own weight budget for this URL has no room: the request was not sent."""


class GarbageResponse(InfoFailure):
    """The endpoint answered something that is not an info response (HTML, not JSON, 4xx)."""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class InfoEndpoint:
    """One info URL with its client, budget and health."""

    def __init__(
        self, url: str, policy: EndpointPolicy, health: EndpointHealth, budget: WeightBudget
    ) -> None:
        self.url = url
        self._policy = policy
        self.health = health
        self.budget = budget
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(policy.timeout_seconds),
            # Headers and body leave in two writes: without TCP_NODELAY the body waits for the
            # peer's delayed ACK (tens of ms a request on keep-alive connections).
            transport=httpx.AsyncHTTPTransport(limits=limits, socket_options=_NO_DELAY),
            headers={"content-type": "application/json"},
        )
        self.request_count = 0
        self.rate_limited_count = 0

    async def post(self, request: dict[str, str], weight: int, *, prepaid: bool = False) -> Any:
        """The decoded JSON answer to one info request of `weight`. The first attempt's weight
        is already spent (and settled by the caller) when `prepaid`; each retry spends and
        settles it again.

        May raise: BudgetSpent (not sent), RateLimited, GarbageResponse, InfoFailure.
        """
        attempt = 0
        kind = request.get("type", "?")
        while True:
            paid_here = not (prepaid and attempt == 0)
            if paid_here and not self.budget.try_spend(weight):
                if self.budget.closed:
                    raise BudgetSpent(f"{kind}: not sent, backing off after HTTP 429")
                raise BudgetSpent(
                    f"{kind}: weight budget spent ({self.budget.limit} per "
                    f"{self.budget.window_seconds:g} s)"
                )
            started = time.perf_counter()
            wait = jittered_backoff(attempt + 1, self._policy.backoff_seconds)
            try:
                try:
                    doc = await self._once(request, kind)
                finally:
                    if paid_here:  # a prepaid first attempt is settled by whoever paid it
                        self.budget.settle(weight)
            except GarbageResponse as garbage:
                self.health.record_failure(str(garbage), time.perf_counter() - started)
                raise
            except RateLimited as limited:
                self.health.record_failure(str(limited), time.perf_counter() - started)
                self.rate_limited_count += 1
                wait = max(wait, limited.retry_after or 0.0)
                self.budget.close_for(wait)
                if attempt >= self._policy.retries:
                    raise
            except InfoFailure as failure:
                self.health.record_failure(str(failure), time.perf_counter() - started)
                if attempt >= self._policy.retries:
                    raise
            else:
                self.health.record_success(time.perf_counter() - started)
                return doc
            attempt += 1
            await asyncio.sleep(wait)

    async def _once(self, request: dict[str, str], kind: str) -> Any:
        self.request_count += 1
        try:
            response = await self._client.post(self.url, content=json.dumps(request).encode())
        except httpx.TimeoutException:
            raise InfoFailure(
                f"{kind}: timed out after {self._policy.timeout_seconds:g} s"
            ) from None
        except httpx.HTTPError as error:
            reason = f"{type(error).__name__}: {error}".splitlines()[0][:160]
            raise InfoFailure(f"{kind}: transport failed ({reason})") from None
        status = response.status_code
        if status == 429:
            raise RateLimited(f"{kind}: HTTP 429 rate limited", _retry_after(response))
        if status >= 500:
            raise InfoFailure(f"{kind}: HTTP {status}")
        body = response.content
        if status != 200:
            raise GarbageResponse(f"{kind}: HTTP {status} ({body[:60]!r})")
        if body.lstrip()[:1] == b"<":
            raise GarbageResponse(f"{kind}: answered an HTML page, not JSON ({body[:60]!r})")
        try:
            return parse_body(body)
        except DecodeError as error:
            raise GarbageResponse(f"{kind}: {error}") from None

    async def aclose(self) -> None:
        """May raise: nothing."""
        await self._client.aclose()
