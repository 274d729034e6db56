"""Request body limits: a body over the limit is refused with 413 before the app sees it (by
Content-Length), or as soon as a chunked body passes it. The rest of the body is read and
discarded first (up to `DRAIN_LIMIT`), so the client, still sending, can read the answer."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aggregator.api.errors import error_body
from aggregator.api.responses import dumps

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: a batch of 100 or a what-if of 100 changes is far less
DRAIN_LIMIT = 64 << 20  # past this the connection is just closed


class _TooLarge(BaseException):
    """Raised from `receive` past the limit. A BaseException: the framework's body parsing
    turns any Exception into a 400, and this must reach the middleware as it is."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _drain(self, receive: Receive, already: int) -> None:
        seen = already
        while seen <= DRAIN_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _refuse(self, send: Send) -> None:
        body = dumps(error_body("too_large", f"the body is over {self.max_bytes} bytes", "body"))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await self._drain(receive, 0)
                    await self._refuse(send)
                    return
        received = 0
        started = False
        finished = False

        async def counted_receive() -> Message:
            nonlocal received, finished
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                finished = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                if not finished:
                    await self._drain(receive, received)
                await self._refuse(send)
