"""A small local HTTP proxy in front of a real node, for fault tests: it can delay every answer,
and run a hook when a request arrives (e.g. kill the node behind it mid-poll). Nothing is
mocked: requests go to the real node, and a node that is gone is an HTTP 502."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

Hook = Callable[[], Awaitable[None]]


class RpcProxy:
    """Forwards POST bodies to `upstream` after `delay_seconds`; `on_request`, when set, runs
    (once) before the request that finds it set is forwarded."""

    def __init__(self, upstream: str, *, delay_seconds: float = 0.0) -> None:
        self.upstream = upstream
        self.delay_seconds = delay_seconds
        self.on_request: Hook | None = None
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> RpcProxy:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}"
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        hook, self.on_request = self.on_request, None
        if hook is not None:
            await hook()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        assert self._client is not None
        try:
            async with self._client.post(
                self.upstream, data=body, headers={"Content-Type": "application/json"}
            ) as answer:
                payload = await answer.read()
                return web.Response(
                    body=payload, status=answer.status, content_type="application/json"
                )
        except aiohttp.ClientError as exc:
            return web.Response(status=502, text=f"upstream {self.upstream}: {exc}")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()
