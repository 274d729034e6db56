"""A real webhook receiver on loopback (aiohttp), for the alert tests: it checks every
signature, counts requests per idempotency key, and can fail or hang on purpose."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from aggregator.alerts.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify

Mode = Literal["ok", "fail", "hang"]


@dataclass
class Received:
    key: str
    attempt: int
    signed: bool  # the signature verified under the receiver's secret
    event: dict[str, Any]
    answered: int  # the status code sent back (0: hung, never answered)


@dataclass
class Receiver:
    """`fail_first`: answer 500 to the first N requests of each idempotency key, then 200.
    `mode`: `fail` answers 500 forever, `hang` never answers."""

    secret: bytes
    fail_first: int = 0
    mode: Mode = "ok"
    delay_seconds: float = 0.0  # before answering (to make deliverers overlap)
    requests: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        signed = verify(self.secret, request.headers.get(SIGNATURE_HEADER, ""), body)
        seen = sum(1 for r in self.requests if r.key == key)
        answer = 200
        if self.mode == "fail" or seen < self.fail_first:
            answer = 500
        received = Received(
            key=key,
            attempt=int(request.headers.get("X-Xmargin-Delivery-Attempt", "0")),
            signed=signed,
            event=json.loads(body),
            answered=0 if self.mode == "hang" else answer,
        )
        self.requests.append(received)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.mode == "hang":
            await asyncio.sleep(3600)
        return web.Response(status=answer, text="ok" if answer == 200 else "try later")

    def per_key(self) -> Counter[str]:
        return Counter(r.key for r in self.requests)

    def acknowledged(self) -> set[str]:
        return {r.key for r in self.requests if r.answered == 200}

    async def wait_for(self, predicate: Any, within: float) -> bool:
        """Poll `predicate()` until true or `within` seconds pass."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if predicate():
                return True
            await asyncio.sleep(0.05)
        return bool(predicate())
